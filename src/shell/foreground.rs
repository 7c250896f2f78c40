//! A process in the foreground: its output streams to stdout as it arrives. Ctrl-C (SIGINT) sends it
//! INT; on a terminal Ctrl-Z (SIGTSTP) stops it and hands the prompt back, as bash does for a job.

use super::client::{Client, ClientError};
use super::jobs::JobState;
use super::session::Shell;
use crate::proto::{Pid, Request, Response, Signal, SignalRequest, WaitRequest};
use std::io::Write;
use tokio::signal::unix::{SignalKind, signal};

/// Status bash gives a job stopped by Ctrl-Z (128 + SIGTSTP).
pub const STOPPED_STATUS: i32 = 148;

/// Follows `pid` on `client` (already streaming) until it exits or is stopped. `job` is its number in
/// the job table when it already has one (`fg`).
pub async fn attach(
    sh: &mut Shell,
    mut client: Client,
    pid: Pid,
    command: &str,
    job: Option<u32>,
) -> i32 {
    let mut sigint = signal(SignalKind::interrupt()).ok();
    let mut sigtstp = if sh.interactive {
        signal(SignalKind::from_raw(nix::libc::SIGTSTP)).ok()
    } else {
        None
    };
    let mut at_line_start = true;
    loop {
        tokio::select! {
            reply = client.recv() => match reply {
                Ok(Response::Output(chunk)) => {
                    if chunk.text.is_empty() {
                        continue;
                    }
                    if !write_out(&chunk.text) {
                        // Whoever read our output is gone; the process has no one to answer to.
                        send_signal(sh, pid, Signal::Int).await;
                        return 0;
                    }
                    at_line_start = chunk.text.ends_with('\n');
                }
                Ok(Response::Exited(exited)) => {
                    end_line(at_line_start);
                    // Collect the zombie: a foreground process's status belongs to this shell.
                    let _ = client.call(Request::Wait(WaitRequest { pid })).await;
                    if let Some(id) = job {
                        sh.jobs.remove(id);
                    }
                    if let crate::proto::ExitStatus::Failed { reason } = &exited.status {
                        eprintln!("llmsh: {pid}: {reason}");
                    }
                    return exited.status.code();
                }
                Ok(Response::Stopped(_)) => {
                    end_line(at_line_start);
                    let id = match job {
                        Some(id) => id,
                        None => sh.jobs.add(pid, command, JobState::Stopped),
                    };
                    sh.jobs.make_current(id);
                    if let Some(j) = sh.jobs.get_mut(id) {
                        j.state = JobState::Stopped;
                    }
                    if let Some(j) = sh.jobs.iter().find(|j| j.id == id) {
                        println!("{}", super::builtins::jobs::format_job(j, '+', false));
                    }
                    return STOPPED_STATUS;
                }
                Ok(Response::Continued(_)) => {}
                Ok(other) => {
                    sh.complain(command, ClientError::unexpected(&other));
                    return 1;
                }
                Err(e) => {
                    end_line(at_line_start);
                    sh.complain(command, e);
                    return 1;
                }
            },
            Some(()) = next_signal(&mut sigint) => send_signal(sh, pid, Signal::Int).await,
            Some(()) = next_signal(&mut sigtstp) => send_signal(sh, pid, Signal::Stop).await,
        }
    }
}

async fn next_signal(s: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match s {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

/// Sends a signal on a second connection (the first is busy streaming).
pub async fn send_signal(sh: &Shell, pid: Pid, signal: Signal) {
    let result = match sh.client().await {
        Ok(mut c) => c
            .call(Request::Signal(SignalRequest { pid, signal }))
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        sh.complain("kill", e);
    }
}

/// Writes to stdout at once; false when stdout is gone (a closed pipe).
pub fn write_out(text: &str) -> bool {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .is_ok()
}

fn end_line(at_line_start: bool) {
    if !at_line_start {
        write_out("\n");
    }
}
