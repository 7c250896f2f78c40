//! `exit [N]`: leave the shell with status N (default: the last command's). With stopped jobs, the
//! first `exit` only warns, as bash does.

use super::{Help, usage_error};
use crate::shell::jobs::JobState;
use crate::shell::session::Shell;

pub const HELP: Help = Help {
    name: "exit",
    usage: "exit [N]",
    summary: "leave the shell",
};

pub fn run(sh: &mut Shell, args: &[String]) -> i32 {
    let status = match args.first() {
        None => sh.last_status,
        Some(n) => match n.parse::<i64>() {
            Ok(n) => (n & 0xff) as i32,
            Err(_) => return usage_error(sh, &HELP, format!("{n}: numeric argument required")),
        },
    };
    let stopped = sh.jobs().iter().any(|j| j.state == JobState::Stopped);
    if sh.interactive && stopped && !sh.warned_stopped_jobs {
        sh.warned_stopped_jobs = true;
        eprintln!("There are stopped jobs.");
        return 1;
    }
    sh.exit_requested = Some(status);
    status
}
