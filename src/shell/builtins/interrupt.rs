//! `interrupt system MESSAGE` and `interrupt timer`: raise a kernel interrupt by hand, as SIGUSR1 and
//! SIGALRM do; prints the pid of the handler process it spawned. When the line's handlers already wait
//! at their limit the raise is coalesced into them: no new process, a notice, and status 1.

use super::{Help, usage_error};
use crate::proto::{InterruptKind, InterruptRequest, Request, Response};
use crate::shell::session::Shell;

pub const HELP: Help = Help {
    name: "interrupt",
    usage: "interrupt system MESSAGE... | interrupt timer",
    summary: "raise a SYSTEM (with a message) or TIMER interrupt",
};

pub async fn run(sh: &mut Shell, args: &[String]) -> i32 {
    let (kind, message) = match args.first().map(|a| a.to_ascii_lowercase()).as_deref() {
        Some("system") if args.len() > 1 => (InterruptKind::System, Some(args[1..].join(" "))),
        Some("system") => (InterruptKind::System, None),
        Some("timer") if args.len() == 1 => (InterruptKind::Timer, None),
        Some("timer") => return usage_error(sh, &HELP, "the timer interrupt takes no message"),
        Some(other) => {
            return usage_error(
                sh,
                &HELP,
                format!("{other}: unknown interrupt (system or timer)"),
            );
        }
        None => return usage_error(sh, &HELP, "an interrupt is required"),
    };
    match sh
        .call(Request::Interrupt(InterruptRequest { kind, message }))
        .await
    {
        Ok(Response::Interrupted(i)) => match i.handler {
            Some(pid) => {
                println!("{pid}");
                0
            }
            None => {
                sh.complain(
                    "interrupt",
                    "coalesced: the line's handlers already wait at their limit (see `interrupts`)",
                );
                1
            }
        },
        Ok(other) => sh.unexpected("interrupt", &other),
        Err(e) => {
            sh.complain("interrupt", e);
            1
        }
    }
}
