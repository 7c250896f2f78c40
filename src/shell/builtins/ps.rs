//! `ps [-a] [-l]`: the process table. A waiting process shows its place in the run queue (QPOS, 1 runs
//! next) and an estimate of when it gets a slot (ETA, from recent token rates; `?` before any run has
//! been timed). `-a` includes other users' processes (their prompts hidden), `-l` adds prompt tokens,
//! context switches, the slot, tokens per second and notes.

use super::{Help, usage_error};
use crate::proto::{ListRequest, Request, Response};
use crate::shell::render;
use crate::shell::session::Shell;

pub const HELP: Help = Help {
    name: "ps",
    usage: "ps [-a] [-l]",
    summary: "list processes (-a all users, -l long format)",
};

pub async fn run(sh: &mut Shell, args: &[String]) -> i32 {
    let (mut all, mut long) = (false, false);
    for arg in args {
        let Some(flags) = arg.strip_prefix('-').filter(|f| !f.is_empty()) else {
            return usage_error(sh, &HELP, format!("{arg}: unexpected argument"));
        };
        for f in flags.chars() {
            match f {
                'a' | 'e' | 'A' => all = true,
                'l' => long = true,
                _ => return usage_error(sh, &HELP, format!("-{f}: invalid option")),
            }
        }
    }
    let reply = sh.call(Request::List(ListRequest { all_users: all })).await;
    match reply {
        Ok(Response::Processes(list)) => {
            print!(
                "{}",
                render::ps_table(&list, long, render::terminal_width())
            );
            0
        }
        Ok(other) => sh.unexpected("ps", &other),
        Err(e) => {
            sh.complain("ps", e);
            1
        }
    }
}
