//! `Renice`: change a process's niceness. A waiting process moves in the run queue at once; a running
//! one is weighed with its new nice at its next quantum boundary. The reply waits until the change
//! is durable.

use super::{Conn, Kernel, Peer, check_nice, durable, reply};
use crate::proto::{CodecError, ReniceRequest, Response};
use std::sync::Arc;

pub async fn handle(
    kernel: &Arc<Kernel>,
    peer: Peer,
    req: ReniceRequest,
    conn: &mut Conn,
) -> Result<(), CodecError> {
    let reniced = check_nice(kernel, peer, req.nice)
        .and_then(|()| kernel.update(|s| s.renice_as(peer.uid, req.pid, req.nice)));
    let result = match reniced {
        Ok((reniced, ack)) => durable(ack, &format!("renice of {}", req.pid))
            .await
            .map(|()| Response::Reniced(reniced)),
        Err(failure) => Err(failure),
    };
    reply(conn, result).await
}
