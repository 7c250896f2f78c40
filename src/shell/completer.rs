//! Tab completion: builtin names in command position, each builtin's flags, process types and signal
//! names, job specs (`%1`) from this shell's job table, PIDs and scheduling policies from the kernel.
//! [`want`] decides what the word under the cursor can be; [`candidates`] lists the matches, asking
//! [`Facts`] only for what that word needs, so a builtin or flag never costs a round trip.

use super::builtins;
use super::client::Client;
use super::jobs::SharedJobs;
use super::tokens;
use crate::proto::{ListRequest, ProcessType, Request, Response, SchedRequest, Signal};
use reedline::{Completer, CompletionResult, Span, Suggestion};
use std::path::PathBuf;
use std::sync::PoisonError;
use std::time::Duration;

/// How long completion waits for the kernel before offering nothing: a hung kernel must not
/// freeze the line editor.
const KERNEL_LOOKUP_TIMEOUT: Duration = Duration::from_secs(1);

/// Longest description shown beside a PID (the prompt, cut).
const DESCRIPTION_CHARS: usize = 40;

/// What the word under the cursor can be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Want {
    Builtin,
    /// One of these words (flags, interrupt kinds, process types, signal names); case-insensitive.
    Words(Vec<&'static str>),
    /// A job spec of this shell.
    Job,
    /// A PID or a job spec.
    Target,
    /// A scheduling policy the kernel offers.
    Policy,
    /// Free text (a prompt, a number).
    Nothing,
}

/// What completion may need to look up.
pub trait Facts {
    /// This shell's jobs: (`%N`, command).
    fn jobs(&mut self) -> Vec<(String, String)>;
    /// The user's processes: (PID, a description).
    fn processes(&mut self) -> Vec<(String, String)>;
    /// The scheduling policies the kernel offers.
    fn policies(&mut self) -> Vec<String>;
}

const QUERY_FLAGS: &[&str] = &[
    "--system",
    "--type",
    "--max-tokens",
    "--nice",
    "--model",
    "--continue",
    "--deadline",
    "--deadline-soft",
    "--syscalls",
    "--must-call",
    "--",
];
const QUERY_VALUE_FLAGS: &[&str] = &[
    "--system",
    "-s",
    "--max-tokens",
    "-m",
    "--nice",
    "-n",
    "--model",
    "--continue",
    "-c",
    "--deadline",
];

fn signal_names() -> Vec<&'static str> {
    Signal::ALL.iter().map(|s| s.name()).collect()
}

fn flags_or_nothing(current: &str, flags: &[&'static str]) -> Want {
    if current.starts_with('-') {
        Want::Words(flags.to_vec())
    } else {
        Want::Nothing
    }
}

/// What the word `current` can be, after `before` (the words of its command before it).
pub fn want(before: &[&str], current: &str) -> Want {
    let Some((&name, args)) = before.split_first() else {
        return Want::Builtin;
    };
    let prev = args.last().copied();
    match name {
        "query" => query_want(args, current),
        "nice" => match args.iter().position(|a| *a == "query") {
            Some(at) => query_want(&args[at + 1..], current),
            None if prev == Some("-n") => Want::Nothing,
            None if current.starts_with('-') => Want::Words(vec!["-n"]),
            None => Want::Words(vec!["query"]),
        },
        "ps" => flags_or_nothing(current, &["-a", "-l"]),
        "jobs" => flags_or_nothing(current, &["-l"]),
        "fg" | "bg" => Want::Job,
        "wait" | "cat" => Want::Target,
        "kill" => match prev {
            Some("-s" | "-l") => Want::Words(signal_names()),
            Some("-n") => Want::Nothing,
            _ if current.starts_with('-') => {
                let mut flags = vec!["-l", "-s", "-n"];
                flags.extend(Signal::ALL.iter().map(|s| kill_flag(*s)));
                Want::Words(flags)
            }
            _ => Want::Target,
        },
        "renice" => match prev {
            Some("-n") => Want::Nothing,
            _ if current.starts_with('-') => Want::Words(vec!["-n"]),
            _ if args.iter().all(|a| a.starts_with('-')) => Want::Nothing,
            _ => Want::Target,
        },
        "interrupt" if args.is_empty() => Want::Words(vec!["system", "timer"]),
        "sched" if args.is_empty() => Want::Policy,
        "help" if args.is_empty() => Want::Builtin,
        "clear" if args.is_empty() => flags_or_nothing(current, &["-x"]),
        _ => Want::Nothing,
    }
}

fn query_want(args: &[&str], current: &str) -> Want {
    if args.contains(&"--") {
        return Want::Nothing;
    }
    match args.last().copied() {
        Some("--type" | "-t") => {
            Want::Words(ProcessType::ALL.iter().map(|t| type_word(*t)).collect())
        }
        Some(flag) if QUERY_VALUE_FLAGS.contains(&flag) => Want::Nothing,
        _ => flags_or_nothing(current, QUERY_FLAGS),
    }
}

fn type_word(t: ProcessType) -> &'static str {
    match t {
        ProcessType::Housekeeping => "housekeeping",
        ProcessType::LlmInitiated => "llm_initiated",
        ProcessType::UserSubprocess => "user_subprocess",
        ProcessType::User => "user",
        ProcessType::System => "system",
    }
}

fn kill_flag(s: Signal) -> &'static str {
    match s {
        Signal::Hup => "-HUP",
        Signal::Int => "-INT",
        Signal::Kill => "-KILL",
        Signal::Term => "-TERM",
        Signal::Cont => "-CONT",
        Signal::Stop => "-STOP",
        Signal::Tstp => "-TSTP",
        Signal::Pipe => "-PIPE",
        Signal::Xcpu => "-XCPU",
    }
}

/// The completions of the word that ends at `pos`: where it starts, and (value, description) pairs.
pub fn candidates(
    line: &str,
    pos: usize,
    facts: &mut dyn Facts,
) -> (usize, Vec<(String, Option<String>)>) {
    let prefix = line.get(..pos).unwrap_or(line);
    let command = tokens::commands(prefix).pop().unwrap_or_default();
    let mut words: Vec<&str> = command.iter().map(|r| &prefix[r.clone()]).collect();
    let (start, current) = match command.last() {
        Some(last) if last.end == prefix.len() => (last.start, words.pop().unwrap_or("")),
        _ => (prefix.len(), ""),
    };
    if current.starts_with(['\'', '"']) {
        return (start, Vec::new());
    }
    let all: Vec<(String, Option<String>)> = match want(&words, current) {
        Want::Builtin => builtins::ALL
            .iter()
            .map(|h| (h.name.to_string(), Some(h.summary.to_string())))
            .collect(),
        Want::Words(words) => {
            let lower = current.to_ascii_lowercase();
            return (
                start,
                words
                    .into_iter()
                    .filter(|w| w.to_ascii_lowercase().starts_with(&lower))
                    .map(|w| (w.to_string(), None))
                    .collect(),
            );
        }
        Want::Job => described(facts.jobs()),
        Want::Target if current.starts_with('%') => described(facts.jobs()),
        Want::Target if !current.is_empty() => described(facts.processes()),
        Want::Target => {
            let mut all = described(facts.jobs());
            all.extend(described(facts.processes()));
            all
        }
        Want::Policy => facts.policies().into_iter().map(|p| (p, None)).collect(),
        Want::Nothing => Vec::new(),
    };
    let matching = all.into_iter().filter(|(v, _)| v.starts_with(current));
    (start, matching.collect())
}

fn described(pairs: Vec<(String, String)>) -> Vec<(String, Option<String>)> {
    pairs.into_iter().map(|(v, d)| (v, Some(d))).collect()
}

/// The completer reedline calls on Tab. It asks afresh each time (reedline asks a few times per
/// Tab; a local round trip costs well under a millisecond), so PIDs are never stale.
pub struct ShellCompleter {
    facts: LiveFacts,
}

impl ShellCompleter {
    /// A completer over this shell's jobs and the kernel at `socket`, asked on `runtime`.
    pub fn new(jobs: SharedJobs, socket: PathBuf, runtime: tokio::runtime::Handle) -> Self {
        ShellCompleter {
            facts: LiveFacts {
                jobs,
                socket,
                runtime,
            },
        }
    }
}

impl Completer for ShellCompleter {
    fn complete(&mut self, line: &str, pos: usize) -> CompletionResult {
        let (start, found) = candidates(line, pos, &mut self.facts);
        let suggestions: Vec<Suggestion> = found
            .into_iter()
            .map(|(value, description)| Suggestion {
                value,
                description,
                span: Span::new(start, pos.max(start)),
                append_whitespace: true,
                ..Suggestion::default()
            })
            .collect();
        CompletionResult::fresh(suggestions)
    }
}

/// Facts from the job table and, for PIDs and policies, from the kernel.
struct LiveFacts {
    jobs: SharedJobs,
    socket: PathBuf,
    /// The shell's runtime; the editor runs outside it, so blocking on it here is allowed.
    runtime: tokio::runtime::Handle,
}

impl LiveFacts {
    fn ask(&self, request: Request) -> Option<Response> {
        let socket = self.socket.clone();
        let call = async move { Client::connect(&socket).await?.call(request).await };
        let reply = self
            .runtime
            .block_on(tokio::time::timeout(KERNEL_LOOKUP_TIMEOUT, call));
        reply.ok()?.ok()
    }
}

impl Facts for LiveFacts {
    fn jobs(&mut self) -> Vec<(String, String)> {
        let jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        jobs.iter()
            .map(|j| (format!("%{}", j.id), j.command.clone()))
            .collect()
    }

    fn processes(&mut self) -> Vec<(String, String)> {
        let Some(Response::Processes(list)) =
            self.ask(Request::List(ListRequest { all_users: false }))
        else {
            return Vec::new();
        };
        list.processes
            .into_iter()
            .map(|p| {
                let prompt: String = p
                    .prompt
                    .unwrap_or_default()
                    .chars()
                    .take(DESCRIPTION_CHARS)
                    .collect();
                (p.pid.to_string(), format!("{} {prompt}", p.state.letter()))
            })
            .collect()
    }

    fn policies(&mut self) -> Vec<String> {
        match self.ask(Request::Sched(SchedRequest { policy: None })) {
            Some(Response::Sched(s)) => s.available,
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests;
