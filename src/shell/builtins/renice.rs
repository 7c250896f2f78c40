//! `renice -n N PID|%JOB...`: change the niceness of processes, reported as renice(1) does.

use super::{Help, resolve_target, usage_error};
use crate::proto::{ReniceRequest, Request, Response};
use crate::shell::session::Shell;

pub const HELP: Help = Help {
    name: "renice",
    usage: "renice [-n] N PID|%JOB...",
    summary: "change the niceness of processes (takes effect at the next scheduling decision)",
};

pub async fn run(sh: &mut Shell, args: &[String]) -> i32 {
    let rest = match args.first().map(String::as_str) {
        Some("-n" | "--priority") => &args[1..],
        _ => args,
    };
    let Some(value) = rest.first() else {
        return usage_error(sh, &HELP, "a niceness is required");
    };
    let nice: i8 = match value.parse() {
        Ok(n) => n,
        Err(_) => return usage_error(sh, &HELP, format!("{value}: invalid niceness")),
    };
    if rest.len() < 2 {
        return usage_error(sh, &HELP, "a process or job is required");
    }
    let mut status = 0;
    for target in &rest[1..] {
        let pid = match resolve_target(sh, target) {
            Ok(pid) => pid,
            Err(message) => {
                sh.complain("renice", message);
                status = 1;
                continue;
            }
        };
        let reply = sh.call(Request::Renice(ReniceRequest { pid, nice })).await;
        match reply {
            Ok(Response::Reniced(r)) => {
                println!(
                    "{} (process ID) old priority {}, new priority {}",
                    r.pid, r.old_nice, r.new_nice
                );
            }
            Ok(other) => status = sh.unexpected("renice", &other),
            Err(e) => {
                sh.complain("renice", e);
                status = 1;
            }
        }
    }
    status
}
