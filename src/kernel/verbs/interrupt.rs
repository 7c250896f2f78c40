//! `Interrupt`: raise an interrupt by hand (`interrupt system MESSAGE`, `interrupt timer`), as a
//! signal to the kernel would; answers with the handler process's pid, or none when the raise was
//! coalesced into handlers already waiting at the line's limit.

use super::{Conn, Kernel, Peer, reply};
use crate::proto::{CodecError, InterruptRequest, Interrupted, Response};
use std::sync::Arc;

pub async fn handle(
    kernel: &Arc<Kernel>,
    peer: Peer,
    req: InterruptRequest,
    conn: &mut Conn,
) -> Result<(), CodecError> {
    let raised = kernel.raise_interrupt(req.kind, req.message.as_deref(), peer.uid);
    reply(
        conn,
        raised.map(|handler| {
            Response::Interrupted(Interrupted {
                kind: req.kind,
                handler,
            })
        }),
    )
    .await
}
