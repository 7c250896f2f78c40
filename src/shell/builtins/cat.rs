//! `cat PID|%JOB...`: print a process's output so far (all of it once it has finished). When the
//! process failed, or waits out a failing backend, the reason follows on stderr, so the output is
//! never mistaken for a whole answer.

use super::{Help, resolve_target, usage_error};
use crate::proto::{ExitStatus, OutputRequest, Pid, ProcessState, Request, Response, StatRequest};
use crate::shell::client::ClientError;
use crate::shell::foreground::write_out;
use crate::shell::session::Shell;

pub const HELP: Help = Help {
    name: "cat",
    usage: "cat PID|%JOB...",
    summary: "print a process's output so far",
};

pub async fn run(sh: &mut Shell, args: &[String]) -> i32 {
    if args.is_empty() {
        return usage_error(sh, &HELP, "a process or job is required");
    }
    let mut status = 0;
    for arg in args {
        let pid = match resolve_target(sh, arg) {
            Ok(pid) => pid,
            Err(message) => {
                sh.complain("cat", message);
                status = 1;
                continue;
            }
        };
        match print_output(sh, pid).await {
            Ok(Printed::All) => {
                if let Some(reason) = why_incomplete(sh, pid).await {
                    sh.complain("cat", format!("{pid}: {reason}"));
                }
            }
            Ok(Printed::ReaderGone) => return 0,
            Err(e) => {
                sh.complain("cat", e);
                status = 1;
            }
        }
    }
    status
}

/// How printing an output ended.
enum Printed {
    All,
    /// Whoever reads our stdout is gone (a closed pipe): stop quietly, like `cat`.
    ReaderGone,
}

/// Prints `pid`'s output so far: one `Output` frame, or `OutputPart` frames and the last piece as
/// `Output` when it is larger than a frame; ends it with a newline if it lacks one.
async fn print_output(sh: &Shell, pid: Pid) -> Result<Printed, ClientError> {
    let mut client = sh.client().await?;
    client
        .send(Request::Output(OutputRequest { pid, follow: false }))
        .await?;
    let mut ends_line = true;
    loop {
        let (text, last) = match client.recv().await? {
            Response::OutputPart(chunk) => (chunk.text, false),
            Response::Output(chunk) => (chunk.text, true),
            other => return Err(ClientError::unexpected(&other)),
        };
        if !text.is_empty() {
            if !write_out(&text) {
                return Ok(Printed::ReaderGone);
            }
            ends_line = text.ends_with('\n');
        }
        if last {
            break;
        }
    }
    if !ends_line {
        write_out("\n");
    }
    Ok(Printed::All)
}

/// Why `pid`'s output is not a whole answer, if it failed or waits out a failing backend. `None` as
/// well when the kernel cannot say (an older kernel without `Stat`).
async fn why_incomplete(sh: &Shell, pid: Pid) -> Option<String> {
    let reply = sh.call(Request::Stat(StatRequest { pid })).await;
    let Ok(Response::Processes(list)) = reply else {
        return None;
    };
    let row = list.processes.into_iter().next()?;
    match row.exit {
        Some(ExitStatus::Failed { reason }) => Some(reason),
        None if row.state == ProcessState::Waiting => row.note,
        _ => None,
    }
}
