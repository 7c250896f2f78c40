//! `bg [%JOB]`: continue a stopped job in the background.

use super::Help;
use crate::proto::Signal;
use crate::shell::foreground;
use crate::shell::jobs::JobState;
use crate::shell::session::Shell;

pub const HELP: Help = Help {
    name: "bg",
    usage: "bg [%JOB...]",
    summary: "continue stopped jobs in the background",
};

pub async fn run(sh: &mut Shell, args: &[String]) -> i32 {
    sh.refresh_jobs().await;
    let specs: Vec<Option<&String>> = if args.is_empty() {
        vec![None]
    } else {
        args.iter().map(Some).collect()
    };
    let mut status = 0;
    for spec in specs {
        let job = sh
            .jobs()
            .resolve_or_current(spec.map(String::as_str))
            .cloned();
        let job = match job {
            Ok(job) => job,
            Err(message) => {
                sh.complain("bg", message);
                status = 1;
                continue;
            }
        };
        if job.state != JobState::Stopped {
            sh.complain("bg", format!("job {} already in background", job.id));
            continue;
        }
        foreground::send_signal(sh, job.pid, Signal::Cont).await;
        let marker = {
            let mut jobs = sh.jobs();
            if let Some(j) = jobs.get_mut(job.id) {
                j.state = JobState::Running;
                j.unreported = false;
            }
            jobs.marker(job.id)
        };
        println!("[{}]{} {} &", job.id, marker, job.command);
    }
    status
}
