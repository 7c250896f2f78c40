//! `Renice`: change a process's niceness. A waiting process moves in the run queue at once; a running
//! one is weighed with its new nice at its next quantum boundary.

use super::{Conn, Kernel, Peer, check_nice, reply};
use crate::proto::{CodecError, ReniceRequest, Reniced, Response};
use std::sync::Arc;

pub async fn handle(
    kernel: &Arc<Kernel>,
    peer: Peer,
    req: ReniceRequest,
    conn: &mut Conn,
) -> Result<(), CodecError> {
    let result = check_nice(kernel, peer, req.nice).and_then(|()| {
        kernel.update(|s| {
            s.owned_mut(req.pid, peer.uid)?;
            let old_nice = s.renice(req.pid, req.nice).unwrap_or(req.nice);
            s.audit(
                peer.uid,
                "reniced",
                req.pid,
                &format!("{old_nice}->{}", req.nice),
            );
            Ok(Reniced {
                pid: req.pid,
                old_nice,
                new_nice: req.nice,
            })
        })
    });
    reply(conn, result.map(Response::Reniced)).await
}
