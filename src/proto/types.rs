//! Value types shared by both ends of the wire and by the journal: process ids, process types,
//! signals, states, exit statuses, and the chat messages a process's conversation is made of. They
//! carry the user contract's names (`USER`, `TERM`, `R`/`Q`/`T`/`S`/`Z`) and their parsing, so the
//! shell and the kernel agree on spelling without a second table.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A process id, unique for the life of a kernel's state directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Pid(pub u64);

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Pid {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Pid)
    }
}

/// The kind of a process. Each kind has a base priority (higher runs first) and a default token
/// allowance, the prototype's table. Variants are append-only: their order is their wire tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ProcessType {
    Housekeeping,
    LlmInitiated,
    UserSubprocess,
    User,
    System,
}

impl ProcessType {
    /// Every type, lowest base priority first.
    pub const ALL: [ProcessType; 5] = [
        ProcessType::Housekeeping,
        ProcessType::LlmInitiated,
        ProcessType::UserSubprocess,
        ProcessType::User,
        ProcessType::System,
    ];

    /// The prototype's base priority: HOUSEKEEPING 1 up to SYSTEM 5.
    pub fn default_base_priority(self) -> u8 {
        match self {
            ProcessType::Housekeeping => 1,
            ProcessType::LlmInitiated => 2,
            ProcessType::UserSubprocess => 3,
            ProcessType::User => 4,
            ProcessType::System => 5,
        }
    }

    /// The prototype's token allowance (the process's rlimit on generated tokens).
    pub fn default_allowance_tokens(self) -> u32 {
        match self {
            ProcessType::Housekeeping => 500,
            ProcessType::LlmInitiated => 1000,
            ProcessType::UserSubprocess => 2000,
            ProcessType::User => 4000,
            ProcessType::System => 3000,
        }
    }

    /// The name users type and `ps` prints.
    pub fn name(self) -> &'static str {
        match self {
            ProcessType::Housekeeping => "HOUSEKEEPING",
            ProcessType::LlmInitiated => "LLM_INITIATED",
            ProcessType::UserSubprocess => "USER_SUBPROCESS",
            ProcessType::User => "USER",
            ProcessType::System => "SYSTEM",
        }
    }
}

impl fmt::Display for ProcessType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ProcessType {
    type Err = String;
    /// Case-insensitive; `-` and `_` are interchangeable (`user-subprocess`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.to_ascii_uppercase().replace('-', "_");
        ProcessType::ALL
            .into_iter()
            .find(|t| t.name() == wanted)
            .ok_or_else(|| {
                let names: Vec<_> = ProcessType::ALL.iter().map(|t| t.name()).collect();
                format!("unknown process type `{s}` (one of {})", names.join(", "))
            })
    }
}

/// A signal a client can send to a process. Numbers are Linux's, so `kill -9` means what it means
/// everywhere. Variants are append-only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Signal {
    /// Hang-up: treated as TERM.
    Hup,
    /// Interrupt (Ctrl-C): stop now, keep the output.
    Int,
    /// Stop now, keep the output; cannot be ignored.
    Kill,
    /// Stop at the next quantum boundary, keep the output.
    Term,
    /// Make a stopped process runnable again.
    Cont,
    /// Give up the slot at once; the process waits stopped (STAT T).
    Stop,
    /// Terminal stop (Ctrl-Z): as STOP.
    Tstp,
    /// Broken pipe: the kernel ends a process whose every reader has gone (exit 141). Sent by the
    /// kernel only, so not in [`Signal::ALL`]; a client may send it, and it ends the process now.
    Pipe,
    /// CPU time limit exceeded: the kernel ends a process still running at its hard deadline with
    /// it (exit status 152). Not in [`Signal::ALL`]: a client cannot send it.
    Xcpu,
}

impl Signal {
    /// Every signal, in `kill -l` order.
    pub const ALL: [Signal; 7] = [
        Signal::Hup,
        Signal::Int,
        Signal::Kill,
        Signal::Term,
        Signal::Cont,
        Signal::Stop,
        Signal::Tstp,
    ];

    /// The Linux signal number.
    pub fn number(self) -> i32 {
        match self {
            Signal::Hup => 1,
            Signal::Int => 2,
            Signal::Kill => 9,
            Signal::Term => 15,
            Signal::Cont => 18,
            Signal::Stop => 19,
            Signal::Tstp => 20,
            Signal::Pipe => 13,
            Signal::Xcpu => 24,
        }
    }

    /// The name without `SIG`, as `kill -l` prints it.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Hup => "HUP",
            Signal::Int => "INT",
            Signal::Kill => "KILL",
            Signal::Term => "TERM",
            Signal::Cont => "CONT",
            Signal::Stop => "STOP",
            Signal::Tstp => "TSTP",
            Signal::Pipe => "PIPE",
            Signal::Xcpu => "XCPU",
        }
    }

    /// Parses `TERM`, `SIGTERM`, `term` or `15`.
    pub fn parse(spec: &str) -> Option<Signal> {
        if let Ok(n) = spec.parse::<i32>() {
            return Signal::ALL.into_iter().find(|s| s.number() == n);
        }
        let upper = spec.to_ascii_uppercase();
        let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
        Signal::ALL.into_iter().find(|s| s.name() == bare)
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a process is in its life. Variants are append-only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProcessState {
    /// On the run queue, waiting for a slot (STAT Q).
    Waiting,
    /// Generating on a slot (STAT R).
    Running,
    /// Stopped by STOP/TSTP; holds no slot (STAT T).
    Stopped,
    /// Waiting on something other than a slot (STAT S).
    Blocked,
    /// Finished, exit status not yet collected by `wait` (STAT Z).
    Zombie,
}

impl ProcessState {
    /// The `ps` STAT letter.
    pub fn letter(self) -> char {
        match self {
            ProcessState::Waiting => 'Q',
            ProcessState::Running => 'R',
            ProcessState::Stopped => 'T',
            ProcessState::Blocked => 'S',
            ProcessState::Zombie => 'Z',
        }
    }
}

/// How a process ended. Variants are append-only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExitStatus {
    /// The answer is complete (or reached the token allowance; see the process's note).
    Finished,
    /// The process could not finish; the reason is for a human.
    Failed { reason: String },
    /// Ended by a signal.
    Killed { signal: Signal },
}

impl ExitStatus {
    /// The shell's exit code: 0 finished, 1 failed, 128+signal killed.
    pub fn code(&self) -> i32 {
        match self {
            ExitStatus::Finished => 0,
            ExitStatus::Failed { .. } => 1,
            ExitStatus::Killed { signal } => 128 + signal.number(),
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Finished => f.write_str("Done"),
            ExitStatus::Failed { reason } => write!(f, "Exit 1 ({reason})"),
            ExitStatus::Killed { signal } => write!(f, "Killed by SIG{signal}"),
        }
    }
}

/// When a process must be done: `within_ms` after its creation. Past a hard deadline a process
/// still alive is ended with `SIGXCPU` (its output kept); past a soft one it only loses the urgency
/// the deadline gave it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadline {
    pub within_ms: u64,
    pub soft: bool,
}

impl Deadline {
    /// Parses a duration as users write it: `30s`, `500ms`, `2m`, `1h`, or bare seconds (`30`).
    pub fn parse_duration_ms(text: &str) -> Result<u64, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let value: f64 = number
            .parse()
            .map_err(|_| format!("{text}: invalid duration (like 30s, 500ms, 2m, 1h)"))?;
        let per_unit_ms = match unit.trim() {
            "" | "s" | "sec" | "secs" => 1000.0,
            "ms" => 1.0,
            "m" | "min" | "mins" => 60_000.0,
            "h" | "hour" | "hours" => 3_600_000.0,
            _ => return Err(format!("{text}: invalid duration unit (ms, s, m or h)")),
        };
        let ms = value * per_unit_ms;
        // A year: no answer is worth waiting longer for, and the sum with a clock cannot overflow.
        if !ms.is_finite() || !(1.0..=365.0 * 86_400_000.0).contains(&ms) {
            return Err(format!("{text}: duration out of range (1ms to a year)"));
        }
        Ok(ms as u64)
    }
}

/// Who said a chat message. Variants are append-only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    System,
    User,
    Assistant,
    /// A tool's result, sent back in a conversation (OpenAI's `tool` role).
    Tool,
}

impl Role {
    /// The role's name in the OpenAI chat format.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

/// One chat message of a process's conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_by_name_number_and_sig_prefix() {
        for (spec, want) in [
            ("TERM", Some(Signal::Term)),
            ("sigkill", Some(Signal::Kill)),
            ("9", Some(Signal::Kill)),
            ("2", Some(Signal::Int)),
            ("SIGSTOP", Some(Signal::Stop)),
            ("cont", Some(Signal::Cont)),
            ("USR1", None),
            ("99", None),
            ("", None),
        ] {
            assert_eq!(Signal::parse(spec), want, "{spec}");
        }
    }

    #[test]
    fn xcpu_is_status_152_and_cannot_be_sent_by_name() {
        let status = ExitStatus::Killed {
            signal: Signal::Xcpu,
        };
        assert_eq!(status.code(), 152);
        assert_eq!(status.to_string(), "Killed by SIGXCPU");
        assert_eq!(Signal::parse("XCPU"), None);
    }

    #[test]
    fn durations_parse_with_their_units_and_bad_ones_are_refused() {
        for (text, ms) in [
            ("30s", 30_000),
            ("30", 30_000),
            ("500ms", 500),
            ("2m", 120_000),
        ] {
            assert_eq!(Deadline::parse_duration_ms(text), Ok(ms), "{text}");
        }
        assert_eq!(Deadline::parse_duration_ms("1.5h"), Ok(5_400_000));
        for bad in ["", "soon", "5d", "0s", "-3s", "99999999h"] {
            assert!(Deadline::parse_duration_ms(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn exit_codes_follow_the_shell_convention() {
        assert_eq!(ExitStatus::Finished.code(), 0);
        assert_eq!(ExitStatus::Failed { reason: "x".into() }.code(), 1);
        assert_eq!(
            ExitStatus::Killed {
                signal: Signal::Kill
            }
            .code(),
            137
        );
        assert_eq!(
            ExitStatus::Killed {
                signal: Signal::Term
            }
            .code(),
            143
        );
        assert_eq!(
            ExitStatus::Killed {
                signal: Signal::Int
            }
            .code(),
            130
        );
    }

    #[test]
    fn process_types_parse_case_insensitively_and_keep_prototype_defaults() {
        assert_eq!("user".parse::<ProcessType>(), Ok(ProcessType::User));
        assert_eq!(
            "user-subprocess".parse::<ProcessType>(),
            Ok(ProcessType::UserSubprocess)
        );
        assert!("root".parse::<ProcessType>().is_err());
        let table: Vec<_> = ProcessType::ALL
            .iter()
            .map(|t| (t.default_base_priority(), t.default_allowance_tokens()))
            .collect();
        assert_eq!(
            table,
            vec![(1, 500), (2, 1000), (3, 2000), (4, 4000), (5, 3000)]
        );
    }
}
