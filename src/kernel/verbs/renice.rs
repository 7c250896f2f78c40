//! `Renice`: change a process's niceness. A waiting process moves in the run queue at once; a running
//! one is weighed with its new nice at its next quantum boundary. The reply waits until the change
//! is durable.

use super::{Kernel, Peer, check_nice, durable};
use crate::proto::{ReniceRequest, Reply, Response};
use std::sync::Arc;

pub async fn handle(kernel: &Arc<Kernel>, peer: Peer, req: ReniceRequest) -> Reply {
    let reniced = check_nice(kernel, peer, req.nice)
        .and_then(|()| kernel.update(|s| s.renice_as(peer.uid, req.pid, req.nice)));
    match reniced {
        Ok((reniced, ack)) => durable(ack, &format!("renice of {}", req.pid))
            .await
            .map(|()| Response::Reniced(reniced)),
        Err(failure) => Err(failure),
    }
}
