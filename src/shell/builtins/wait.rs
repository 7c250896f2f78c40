//! `wait [PID|%JOB...]`: wait for processes to end, collect them, and return the last one's status.
//! Without arguments, waits for every job of this shell and returns 0, as bash does. A process that
//! failed has its reason printed on stderr.

use super::{Help, resolve_target};
use crate::proto::{ExitStatus, FailureKind, Pid, Request, Response, WaitRequest};
use crate::shell::foreground;
use crate::shell::jobs::JobState;
use crate::shell::session::Shell;

pub const HELP: Help = Help {
    name: "wait",
    usage: "wait [PID|%JOB...]",
    summary: "wait for processes to finish and return the exit status (0 done, 1 failed, 128+N killed)",
};

/// Status of a `wait` cut short by Ctrl-C (128 + SIGINT), as in bash.
const INTERRUPTED_STATUS: i32 = 130;

/// Waits for one process; returns its exit code, or 127 when it is unknown; `None` when Ctrl-C
/// ended the wait.
async fn wait_one(sh: &mut Shell, pid: Pid) -> Option<i32> {
    let reply = tokio::select! {
        reply = sh.call(Request::Wait(WaitRequest { pid })) => reply,
        () = foreground::interrupted(sh) => return None,
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

pub async fn run(sh: &mut Shell, args: &[String]) -> i32 {
    if args.is_empty() {
        let pids: Vec<Pid> = sh
            .jobs()
            .iter()
            .filter(|j| j.state != JobState::Stopped)
            .map(|j| j.pid)
            .collect();
        for pid in pids {
            if wait_one(sh, pid).await.is_none() {
                return INTERRUPTED_STATUS;
            }
        }
        return 0;
    }
    let mut status = 0;
    for arg in args {
        status = match resolve_target(sh, arg) {
            Ok(pid) => match wait_one(sh, pid).await {
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
