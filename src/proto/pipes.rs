//! The wire types of pipes and process groups: creating a process that reads another's output
//! ([`SubmitLinkedRequest`]), signalling a whole group ([`SignalGroupRequest`]), and asking who
//! feeds whom ([`LinksRequest`], for `ps -l` and `ps f`). Like `Origins`, links are asked for apart
//! from the `ps` rows, so the rows keep the encoding older shells read.

use super::messages::{Signalled, SubmitAskRequest};
use super::types::{Pid, Signal};
use serde::{Deserialize, Serialize};

/// Create a process as `SubmitAsk` does, linked to others: `input_from` makes it read that
/// process's whole output, given after its own prompt (see [`frame_input`]); it is created blocked
/// (STAT `S`) until that output is complete. `input` is text the shell read for it (`< FILE`, its own
/// standard input), framed the same way. `pgid` puts it in an existing process group of the asker's
/// (a pipeline); `None` makes it the leader of a group of its own. Answered as `Submit` is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitLinkedRequest {
    pub ask: SubmitAskRequest,
    pub input_from: Option<Pid>,
    pub input: Option<String>,
    pub pgid: Option<Pid>,
    /// `--deadline`, as `SubmitBy` carries it for an unlinked process.
    pub deadline: Option<super::Deadline>,
}

/// Send `signal` to every live process of group `pgid` that the asker may signal (`kill -SIG -PGID`).
/// Answered by `GroupSignalled`; a group with no such process is `NoSuchProcess`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalGroupRequest {
    pub pgid: Pid,
    pub signal: Signal,
}

/// The members signalled, in pid order, with their states afterwards.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSignalled {
    pub pgid: Pid,
    pub processes: Vec<Signalled>,
}

/// The parent, group and pipe of each of `pids` (at most [`super::MAX_ORIGIN_PIDS`]); processes the
/// asker may not read are left out. Answered by `Links`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinksRequest {
    pub pids: Vec<Pid>,
}

/// The answer to `Links`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkList {
    pub links: Vec<ProcessLink>,
}

/// Where one process sits among others.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessLink {
    pub pid: Pid,
    /// The process whose output feeds it, or that `query --continue` followed up.
    pub ppid: Option<Pid>,
    /// Its process group: the pipeline's first process, or itself.
    pub pgid: Pid,
    /// The process whose output it still waits for (STAT `S`).
    pub blocked_on: Option<Pid>,
}

/// The user message of a process that reads input: its prompt, a blank line, then the input as it
/// came. The prompt comes first so it reads as the instruction and the input as its material (as
/// `llm` does with piped text, but instruction first); empty input leaves the prompt alone.
pub fn frame_input(prompt: &str, input: &str) -> String {
    if input.is_empty() {
        return prompt.to_string();
    }
    format!("{prompt}\n\n{input}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_follows_the_prompt_after_a_blank_line_and_empty_input_adds_nothing() {
        assert_eq!(
            frame_input("translate", "hello\nworld\n"),
            "translate\n\nhello\nworld\n"
        );
        assert_eq!(frame_input("translate", ""), "translate");
    }
}
