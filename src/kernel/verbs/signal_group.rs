//! `SignalGroup`: deliver a signal to every process of a group (`kill -SIG -PGID`, `kill %JOB` of a
//! pipeline). The state decides what it does to each member
//! ([`KernelState::signal_group`](crate::kernel::state::KernelState::signal_group)); the reply waits
//! until that is durable.

use super::{Kernel, Peer, durable};
use crate::proto::{GroupSignalled, Reply, Response, SignalGroupRequest};
use std::sync::Arc;

pub async fn handle(kernel: &Arc<Kernel>, peer: Peer, req: SignalGroupRequest) -> Reply {
    let (processes, acks) = kernel.update(|s| s.signal_group(peer.uid, req.pgid, req.signal))?;
    for ack in acks {
        durable(ack, &format!("SIG{} to group {}", req.signal, req.pgid)).await?;
    }
    Ok(Response::GroupSignalled(GroupSignalled {
        pgid: req.pgid,
        processes,
    }))
}
