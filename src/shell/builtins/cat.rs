//! `cat PID|%JOB...`: print a process's output so far (all of it once it has finished).

use super::{Help, resolve_target, usage_error};
use crate::proto::{OutputRequest, Request, Response};
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
        let reply = sh
            .call(Request::Output(OutputRequest { pid, follow: false }))
            .await;
        match reply {
            Ok(Response::Output(chunk)) => {
                if !chunk.text.is_empty() && !write_out(&chunk.text) {
                    return 0;
                }
                if !chunk.text.is_empty() && !chunk.text.ends_with('\n') {
                    write_out("\n");
                }
            }
            Ok(other) => status = sh.unexpected("cat", &other),
            Err(e) => {
                sh.complain("cat", e);
                status = 1;
            }
        }
    }
    status
}
