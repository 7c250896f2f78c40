//! `Stat`: one process's `ps` row, with the note that says why it ended or what it waits out (`cat`
//! prints it). Like `List`, any user may ask; another user's prompt is hidden.

use super::{Kernel, Peer};
use crate::kernel::state::no_such_process;
use crate::proto::{ProcessList, Reply, Response, StatRequest};
use std::sync::Arc;

pub fn handle(kernel: &Arc<Kernel>, peer: Peer, req: StatRequest) -> Reply {
    let row = kernel.read(|s| {
        let info = s
            .stat(req.pid, peer.uid)
            .ok_or_else(|| no_such_process(req.pid))?;
        Ok(ProcessList {
            processes: vec![info],
            cpus: s.config.cpus,
            policy: s.scheduler().policy_name().to_string(),
        })
    });
    row.map(Response::Processes)
}
