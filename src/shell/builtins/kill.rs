//! `kill [-s SIG | -SIG] PID|-PGID|%JOB...` and `kill -l`: send signals to processes, in bash's
//! words. A negative number names a process group, and a job that is a pipeline is signalled as a
//! whole (its group), as bash signals a job's process group.

use super::{Help, resolve_target, usage_error};
use crate::proto::{Pid, Request, Signal, SignalGroupRequest, SignalRequest};
use crate::shell::session::Shell;

pub const HELP: Help = Help {
    name: "kill",
    usage: "kill [-s SIGSPEC | -n SIGNUM | -SIGSPEC] PID|-PGID|%JOB... or kill -l [SIGSPEC]",
    summary: "send a signal to processes (TERM by default; KILL, INT, STOP, CONT, HUP, TSTP)",
};

/// `kill -l`: every signal with its number, or the name/number of one.
fn list(sh: &Shell, args: &[String]) -> i32 {
    if let Some(spec) = args.first() {
        return match Signal::parse(spec) {
            Some(s) if spec.parse::<i32>().is_ok() => {
                println!("{}", s.name());
                0
            }
            Some(s) => {
                println!("{}", s.number());
                0
            }
            None => {
                sh.complain("kill", format!("{spec}: invalid signal specification"));
                1
            }
        };
    }
    let line: Vec<String> = Signal::ALL
        .iter()
        .map(|s| format!("{:>2}) SIG{}", s.number(), s.name()))
        .collect();
    println!("{}", line.join("\t"));
    0
}

pub async fn run(sh: &mut Shell, args: &[String]) -> i32 {
    let (signal, targets) = match args.first().map(String::as_str) {
        None => return usage_error(sh, &HELP, "a process or job is required"),
        Some("-l" | "-L") => return list(sh, &args[1..]),
        Some("-s" | "-n") => match args.get(1) {
            Some(spec) => (Signal::parse(spec).ok_or(spec.clone()), &args[2..]),
            None => {
                return usage_error(
                    sh,
                    &HELP,
                    format!("{}: option requires an argument", args[0]),
                );
            }
        },
        Some("--") => (Ok(Signal::Term), &args[1..]),
        Some(flag) if flag.starts_with('-') && flag.len() > 1 => (
            Signal::parse(&flag[1..]).ok_or(flag[1..].to_string()),
            &args[1..],
        ),
        Some(_) => (Ok(Signal::Term), args),
    };
    let signal = match signal {
        Ok(s) => s,
        Err(spec) => {
            sh.complain("kill", format!("{spec}: invalid signal specification"));
            return 1;
        }
    };
    if targets.is_empty() {
        return usage_error(sh, &HELP, "a process or job is required");
    }
    let mut status = 0;
    for target in targets {
        let request = match target_request(sh, target, signal) {
            Ok(request) => request,
            Err(message) => {
                sh.complain("kill", message);
                status = 1;
                continue;
            }
        };
        let result = sh.call(request).await;
        if let Err(e) = result {
            sh.complain("kill", e);
            status = 1;
        }
    }
    status
}

/// The request that signals `target`: a pid, `-PGID` (a group), or a job (its group if it is a
/// pipeline).
fn target_request(sh: &Shell, target: &str, signal: Signal) -> Result<Request, String> {
    if let Some(group) = target.strip_prefix('-') {
        let pgid: Pid = group
            .parse()
            .map_err(|_| format!("{target}: arguments must be process or job IDs"))?;
        return Ok(Request::SignalGroup(SignalGroupRequest { pgid, signal }));
    }
    if target.starts_with('%')
        && let Some(pgid) = sh.jobs().resolve(target)?.pgid
    {
        return Ok(Request::SignalGroup(SignalGroupRequest { pgid, signal }));
    }
    let pid = resolve_target(sh, target)?;
    Ok(Request::Signal(SignalRequest { pid, signal }))
}
