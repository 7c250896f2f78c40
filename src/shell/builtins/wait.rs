//! `wait [PID|%JOB...]`: wait for processes to end, collect them, and return the last one's status.
//! Without arguments, waits for every job of this shell and returns 0, as bash does. A process that
//! failed has its reason printed on stderr.
//!
//! For a job of this shell, `wait` first shows what the job says: the output not shown yet, then
//! the rest as it comes, one job after another, so `query "a question" & wait` prints the answer.
//! It follows the job's output stream to its end and only then reaps it, on the same connection,
//! so nothing is lost between the two. Ctrl-C stops waiting and leaves the job running; what was
//! printed counts as shown. A pid that is not one of this shell's jobs is only waited for.
//!
//! A job that is a pipeline is waited for as a whole: its earlier processes are collected, then the
//! last one's output shown; its status is the last one's (with `set -o pipefail`, the last failure's).

use super::{Help, resolve_target};
use crate::proto::{ExitStatus, FailureKind, OutputRequest, Pid, Request, Response, WaitRequest};
use crate::shell::client::ClientError;
use crate::shell::foreground::{self, write_out};
use crate::shell::jobs::{JobState, unshown};
use crate::shell::session::Shell;
use crate::shell::signals::echoes_control_keys;

pub const HELP: Help = Help {
    name: "wait",
    usage: "wait [PID|%JOB...]",
    summary: "wait for processes to finish, print what jobs said, and return the exit status (0 done, 1 failed, 128+N killed)",
};

/// Status of a `wait` cut short by Ctrl-C (128 + SIGINT), as in bash.
const INTERRUPTED_STATUS: i32 = 130;

/// Waits for one process; returns its exit code, or 127 when it is unknown; `None` when Ctrl-C
/// ended the wait.
async fn wait_one(sh: &mut Shell, pid: Pid) -> Option<i32> {
    let shown = sh.jobs().by_pid(pid).map(|j| j.shown);
    let reply = match shown {
        Some(shown) => show_to_end(sh, pid, shown).await?,
        None => tokio::select! {
            reply = sh.call(Request::Wait(WaitRequest { pid })) => reply,
            () = foreground::interrupted(sh) => return None,
        },
    };
    let code = match reply {
        Ok(Response::Exited(exited)) => {
            if let ExitStatus::Failed { reason } = &exited.status {
                sh.complain("wait", format!("{pid}: {reason}"));
            }
            exited.status.code()
        }
        Ok(other) => sh.unexpected("wait", &other),
        Err(e) if e.kind() == Some(FailureKind::NoSuchProcess) => {
            sh.complain("wait", format!("pid {pid} is not a child of this shell"));
            127
        }
        Err(e) => {
            sh.complain("wait", e);
            1
        }
    };
    let mut jobs = sh.jobs();
    if let Some(id) = jobs.by_pid(pid).map(|j| j.id) {
        jobs.remove(id);
    }
    Some(code)
}

/// Prints a job's output past its first `shown` bytes until it ends, then reaps it; returns the
/// reap's reply, or `None` after Ctrl-C (the job keeps running, and the table learns how much of
/// its output is now shown).
async fn show_to_end(
    sh: &mut Shell,
    pid: Pid,
    shown: usize,
) -> Option<Result<Response, ClientError>> {
    let mut client = match sh.client().await {
        Ok(client) => client,
        Err(e) => return Some(Err(e)),
    };
    let request = Request::Output(OutputRequest { pid, follow: true });
    if let Err(e) = client.send(request).await {
        return Some(Err(e));
    }
    let (mut seen, mut at_line_start) = (0, true);
    // Cleared when stdout goes away (a closed pipe): the rest is dropped, as `cmd | head` drops it.
    let mut printing = true;
    loop {
        let reply = tokio::select! {
            biased;
            () = foreground::interrupted(sh) => {
                let mut jobs = sh.jobs();
                let id = jobs.by_pid(pid).map(|j| j.id);
                if let Some(job) = id.and_then(|id| jobs.get_mut(id)) {
                    job.shown = seen.max(shown);
                }
                drop(jobs);
                // The terminal echoed `^C` after whatever was printed.
                if !at_line_start || echoes_control_keys() {
                    write_out("\n");
                }
                return None;
            }
            reply = client.recv() => reply,
        };
        match reply {
            Ok(Response::Output(chunk)) => {
                let new = unshown(&chunk.text, seen, shown);
                seen += chunk.text.len();
                if printing && !new.is_empty() {
                    at_line_start = new.ends_with('\n');
                    printing = write_out(new);
                }
            }
            Ok(Response::Stopped(_) | Response::Continued(_)) => {}
            Ok(Response::Exited(_)) => {
                if printing && !at_line_start {
                    write_out("\n");
                }
                return Some(client.call(Request::Wait(WaitRequest { pid })).await);
            }
            other => return Some(other),
        }
    }
}

/// Waits for every process of a job in order (the last one's output shown); the job's status.
async fn wait_job(sh: &mut Shell, pids: &[Pid]) -> Option<i32> {
    let mut codes = Vec::with_capacity(pids.len());
    for pid in pids {
        codes.push(wait_one(sh, *pid).await?);
    }
    Some(crate::shell::pipeline::status_of(&codes, sh.pipes.pipefail))
}

/// The processes `wait ARG` waits for: a job's, or the one pid.
fn targets(sh: &Shell, arg: &str) -> Result<Vec<Pid>, String> {
    if arg.starts_with('%') {
        return sh.jobs().resolve(arg).map(|j| j.pids.clone());
    }
    resolve_target(sh, arg).map(|pid| vec![pid])
}

pub async fn run(sh: &mut Shell, args: &[String]) -> i32 {
    if args.is_empty() {
        let jobs: Vec<Vec<Pid>> = sh
            .jobs()
            .iter()
            .filter(|j| j.state != JobState::Stopped)
            .map(|j| j.pids.clone())
            .collect();
        for pids in jobs {
            if wait_job(sh, &pids).await.is_none() {
                return INTERRUPTED_STATUS;
            }
        }
        return 0;
    }
    let mut status = 0;
    for arg in args {
        status = match targets(sh, arg) {
            Ok(pids) => match wait_job(sh, &pids).await {
                Some(code) => code,
                None => return INTERRUPTED_STATUS,
            },
            Err(message) => {
                sh.complain("wait", message);
                127
            }
        };
    }
    status
}
