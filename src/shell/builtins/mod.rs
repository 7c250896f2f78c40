//! The builtins, one per file, named after the command. Each file has a `HELP` (usage and a one-line
//! summary, which `help` prints) and a `run`. [`dispatch`] maps a command word to its builtin.

pub mod bg;
pub mod cat;
pub mod exit;
pub mod fg;
pub mod help;
pub mod interrupt;
pub mod interrupts;
pub mod jobs;
pub mod kill;
pub mod nice;
pub mod ps;
pub mod query;
pub mod renice;
pub mod sched;
pub mod top;
pub mod wait;

use super::parser::Command;
use super::session::Shell;

/// A builtin's usage line and summary.
pub struct Help {
    pub name: &'static str,
    pub usage: &'static str,
    pub summary: &'static str,
}

/// Every builtin, in the order `help` lists them.
pub const ALL: &[&Help] = &[
    &query::HELP,
    &ps::HELP,
    &jobs::HELP,
    &fg::HELP,
    &bg::HELP,
    &kill::HELP,
    &wait::HELP,
    &cat::HELP,
    &nice::HELP,
    &renice::HELP,
    &interrupt::HELP,
    &interrupts::HELP,
    &sched::HELP,
    &top::HELP,
    &help::HELP,
    &exit::HELP,
];

/// Runs one command; returns its exit status.
pub async fn dispatch(sh: &mut Shell, command: &Command) -> i32 {
    let name = command.words[0].as_str();
    let args = &command.words[1..];
    if command.background && !matches!(name, "query" | "nice") {
        sh.complain(name, "only a query can run in the background");
        return 2;
    }
    match name {
        "query" => query::run(sh, args, command).await,
        "ps" => ps::run(sh, args).await,
        "jobs" => jobs::run(sh, args).await,
        "fg" => fg::run(sh, args).await,
        "bg" => bg::run(sh, args).await,
        "kill" => kill::run(sh, args).await,
        "wait" => wait::run(sh, args).await,
        "cat" => cat::run(sh, args).await,
        "nice" => nice::run(sh, args, command).await,
        "renice" => renice::run(sh, args).await,
        "interrupt" => interrupt::run(sh, args).await,
        "interrupts" => interrupts::run(sh, args).await,
        "sched" => sched::run(sh, args).await,
        "top" => top::run(sh, args).await,
        "help" => help::run(sh, args),
        "exit" | "logout" => exit::run(sh, args),
        other => {
            eprintln!("llmsh: {other}: command not found (try `help`)");
            127
        }
    }
}

/// Prints usage for a builtin after a usage error; returns bash's status for it (2).
pub fn usage_error(sh: &Shell, help: &Help, message: impl std::fmt::Display) -> i32 {
    sh.complain(help.name, message);
    eprintln!("{}: usage: {}", help.name, help.usage);
    2
}

/// A target of `kill`, `wait`, `cat`, `renice`: a pid or a job spec of this shell.
pub fn resolve_target(sh: &Shell, word: &str) -> Result<crate::proto::Pid, String> {
    if word.starts_with('%') {
        return sh.jobs().resolve(word).map(|j| j.pid);
    }
    word.parse()
        .map_err(|_| format!("{word}: arguments must be process or job IDs"))
}
