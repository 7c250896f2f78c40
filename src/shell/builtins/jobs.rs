//! `jobs [-l]`: this shell's jobs, in bash's format (`[1]+  Running                 query ... &`).
//! Finished jobs are shown once and then forgotten: what they printed that was not shown yet comes
//! before the list (it would have been on the terminal already in bash), and they are reaped.

use super::{Help, usage_error};
use crate::shell::jobs::{Job, JobState};
use crate::shell::notices;
use crate::shell::session::Shell;

pub const HELP: Help = Help {
    name: "jobs",
    usage: "jobs [-l]",
    summary: "list this shell's jobs (-l with PIDs)",
};

/// One job line as bash prints it in `jobs` and in notices.
pub fn format_job(job: &Job, marker: char, with_pid: bool) -> String {
    let suffix = if job.state == JobState::Running {
        " &"
    } else {
        ""
    };
    let pid = if with_pid {
        format!(" {}", job.pid)
    } else {
        " ".to_string()
    };
    format!(
        "[{}]{}{} {:<24}{}{}",
        job.id,
        marker,
        pid,
        job.state_word(),
        job.command,
        suffix
    )
}

pub async fn run(sh: &mut Shell, args: &[String]) -> i32 {
    let long = match args.first().map(String::as_str) {
        None => false,
        Some("-l") if args.len() == 1 => true,
        Some(other) => return usage_error(sh, &HELP, format!("{other}: invalid option")),
    };
    sh.refresh_jobs().await;
    let (lines, notices) = {
        let mut jobs = sh.jobs();
        let lines: Vec<String> = jobs
            .iter()
            .map(|job| format_job(job, jobs.marker(job.id), long))
            .collect();
        // Listed is told: finished jobs are forgotten, and no notice repeats what is shown here.
        (lines, jobs.take_notices())
    };
    // What finished jobs had not shown yet, then the list with their `Done` lines; then reaped.
    for finished in notices.into_iter().filter_map(|n| n.finished) {
        notices::print_unshown(&sh.socket, finished).await;
        notices::reap(&sh.socket, finished.pid).await;
    }
    for line in lines {
        println!("{line}");
    }
    0
}
