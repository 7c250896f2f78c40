//! `Signal`: deliver a signal to a process (`kill`). The state decides what the signal does
//! ([`KernelState::signal`](crate::kernel::state::KernelState::signal)); the reply waits until that is
//! durable, or says it could not be recorded.

use super::{Kernel, Peer, durable};
use crate::proto::{Reply, Response, SignalRequest, Signalled};
use std::sync::Arc;

pub async fn handle(kernel: &Arc<Kernel>, peer: Peer, req: SignalRequest) -> Reply {
    let delivered = kernel.update(|s| s.signal(peer.uid, req.pid, req.signal));
    match delivered {
        Ok((state, ack)) => durable(ack, &format!("SIG{} to {}", req.signal, req.pid))
            .await
            .map(|()| {
                Response::Signalled(Signalled {
                    pid: req.pid,
                    state,
                })
            }),
        Err(failure) => Err(failure),
    }
}
