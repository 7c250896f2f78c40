//! The builtins, one per file, named after the command. Each file has a `HELP` (usage and a one-line
//! summary, which `help` prints) and a `run`. [`dispatch`] maps a command word to its builtin.

pub mod bg;
pub mod cat;
pub mod clear;
pub mod exit;
pub mod fg;
pub mod free;
pub mod help;
pub mod interrupt;
pub mod interrupts;
pub mod jobs;
pub mod kill;
pub mod nice;
pub mod ps;
pub mod query;
pub mod quota;
pub mod renice;
pub mod sched;
pub mod set;
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
    &set::HELP,
    &free::HELP,
    &quota::HELP,
    &clear::HELP,
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
        "set" => set::run(sh, args),
        "free" => free::run(sh, args).await,
        "quota" => quota::run(sh, args).await,
        "clear" => clear::run(sh, args),
        "top" => top::run(sh, args).await,
        "help" => help::run(sh, args),
        "exit" | "logout" => exit::run(sh, args),
        other => {
            match closest_builtin(other) {
                Some(near) => {
                    eprintln!("llmsh: {other}: command not found; did you mean '{near}'?");
                }
                None => eprintln!("llmsh: {other}: command not found (try `help`)"),
            }
            127
        }
    }
}

/// The builtin a mistyped command word most likely meant: the nearest name by edit distance, if
/// it is near enough to be a typo (one edit in a short name, two in a longer one) and unambiguous.
pub fn closest_builtin(word: &str) -> Option<&'static str> {
    let allowed = if word.chars().count() <= 3 { 1 } else { 2 };
    let mut best: Option<(usize, &'static str)> = None;
    let mut tie = false;
    for name in ALL.iter().map(|h| h.name).chain(["logout"]) {
        let distance = edit_distance(word, name);
        match best {
            Some((d, _)) if distance > d => {}
            Some((d, _)) if distance == d => tie = true,
            _ => {
                best = Some((distance, name));
                tie = false;
            }
        }
    }
    best.filter(|&(d, _)| d <= allowed && !tie)
        .map(|(_, name)| name)
}

/// Edits (insert, delete, substitute, swap two neighbours) that turn `a` into `b`: the optimal
/// string alignment distance, so `qurey` is one swap from `query`.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // rows[i][j]: distance between the first i chars of `a` and the first j of `b`.
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = d;
        }
    }
    rows[a.len()][b.len()]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_a_swap_as_one_edit() {
        for (a, b, want) in [
            ("query", "query", 0),
            ("qurey", "query", 1),
            ("quer", "query", 1),
            ("qeury", "query", 1),
            ("kil", "kill", 1),
            ("", "ps", 2),
            ("kitten", "sitting", 3),
        ] {
            assert_eq!(edit_distance(a, b), want, "{a} -> {b}");
        }
    }

    #[test]
    fn a_mistyped_command_suggests_the_builtin_it_was_near() {
        for (typed, want) in [
            ("qurey", Some("query")),
            ("quey", Some("query")),
            ("jbos", Some("jobs")),
            ("sp", Some("ps")),
            ("wiat", Some("wait")),
            ("clea", Some("clear")),
            ("frobnicate", None),
            ("xyz", None),
        ] {
            assert_eq!(closest_builtin(typed), want, "{typed}");
        }
    }
}
