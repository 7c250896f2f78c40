//! `jobs [-l]`: this shell's jobs, in bash's format (`[1]+  Running                 query ... &`).
//! Finished jobs are shown once and then forgotten.

use super::{Help, usage_error};
use crate::shell::jobs::{Job, JobState};
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
    let mut jobs = sh.jobs();
    for job in jobs.iter() {
        println!("{}", format_job(job, jobs.marker(job.id), long));
    }
    // Listed is told: finished jobs are forgotten, and no notice repeats what was just shown.
    let _ = jobs.take_notices();
    0
}
