//! `sched [POLICY]`: show the scheduling policy (and the others available, the quantum, the slots and
//! the context switches so far), or switch to another at run time: `priority` (types, nice and aging;
//! the default), `rr` (round robin by quantum), `fair` (weighted fair share of tokens per user and
//! process), `mlfq` (short interactive queries first, long generators sink). It ends with the memory
//! in brief: the context per slot and swap (`free` shows each slot).

use super::{Help, usage_error};
use crate::proto::{FreeRequest, Request, Response, SchedRequest};
use crate::shell::render;
use crate::shell::session::Shell;

pub const HELP: Help = Help {
    name: "sched",
    usage: "sched [priority|rr|fair|mlfq]",
    summary: "show or switch the scheduling policy",
};

pub async fn run(sh: &mut Shell, args: &[String]) -> i32 {
    if args.len() > 1 {
        return usage_error(sh, &HELP, "too many arguments");
    }
    match sh
        .call(Request::Sched(SchedRequest {
            policy: args.first().cloned(),
        }))
        .await
    {
        Ok(Response::Sched(s)) => {
            println!("policy: {}", s.policy);
            println!("available: {}", s.available.join(" "));
            println!("quantum: {} tokens", s.quantum_tokens);
            println!("cpus: {}", s.cpus);
            // The memory in brief (`free` has the detail); an older kernel without it says nothing.
            if let Ok(Response::Memory(m)) = sh.call(Request::Free(FreeRequest {})).await {
                print!("{}", render::memory_summary(&m));
            }
            println!("context switches: {}", s.context_switches);
            0
        }
        Ok(other) => sh.unexpected("sched", &other),
        Err(e) => {
            sh.complain("sched", e);
            1
        }
    }
}
