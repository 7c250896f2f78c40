//! `fg [%JOB]`: bring a job to the foreground. Prints the command, continues it if stopped, shows what
//! it produced while it was away, then streams on. A pipeline continues whole; once its last query
//! ends, the earlier ones are collected and the status is the pipeline's.

use super::{Help, usage_error};
use crate::proto::{OutputRequest, Request, Signal};
use crate::shell::foreground;
use crate::shell::jobs::JobState;
use crate::shell::session::Shell;

pub const HELP: Help = Help {
    name: "fg",
    usage: "fg [%JOB]",
    summary: "bring a job to the foreground",
};

pub async fn run(sh: &mut Shell, args: &[String]) -> i32 {
    if args.len() > 1 {
        return usage_error(sh, &HELP, "too many arguments");
    }
    sh.refresh_jobs().await;
    let job = sh
        .jobs()
        .resolve_or_current(args.first().map(String::as_str))
        .cloned();
    let job = match job {
        Ok(job) => job,
        Err(message) => {
            sh.complain("fg", message);
            return 1;
        }
    };
    println!("{}", job.command);
    sh.jobs().make_current(job.id);
    let mut client = match sh.client().await {
        Ok(c) => c,
        Err(e) => {
            sh.complain("fg", e);
            return 1;
        }
    };
    if let Err(e) = client
        .send(Request::Output(OutputRequest {
            pid: job.pid,
            follow: true,
        }))
        .await
    {
        sh.complain("fg", e);
        return 1;
    }
    // From here the job is reported as it changes, by the attach loop below.
    sh.unwatch_job(job.pid);
    if job.state == JobState::Stopped {
        foreground::send_signal(sh, job.pid, Signal::Cont).await;
        if let Some(j) = sh.jobs().get_mut(job.id) {
            j.state = JobState::Running;
            j.unreported = false;
        }
    }
    let code = foreground::attach(sh, client, job.pid, &job.command, Some(job.id)).await;
    if code == foreground::STOPPED_STATUS || job.pids.len() < 2 {
        return code;
    }
    crate::shell::pipeline::collect_earlier(sh, &job.pids, code).await
}
