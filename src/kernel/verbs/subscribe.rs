//! `Subscribe`: the snapshot of the table, then the kernel's events as they happen, until the client
//! sends anything, closes, or the kernel shuts down (see [`crate::kernel::events`]).

use super::list::LIST_PAGE_BYTES;
use super::{Conn, Kernel, Peer, reply};
use crate::proto::{CodecError, Failure, FailureKind, Request, Response, SubscribeRequest};
use std::sync::Arc;

pub async fn handle(
    kernel: &Arc<Kernel>,
    peer: Peer,
    req: SubscribeRequest,
    conn: &mut Conn,
) -> Result<(), CodecError> {
    let (subscription, snapshot) = kernel.read(|s| {
        kernel
            .events
            .subscribe(s, peer.uid, req.all_users, LIST_PAGE_BYTES)
    });
    for frame in snapshot {
        reply(conn, Ok(Response::Event(frame))).await?;
    }
    loop {
        tokio::select! {
            events = subscription.next() => {
                for event in events {
                    reply(conn, Ok(Response::Event(event))).await?;
                }
            }
            // A client that sends anything, or closes, ends its subscription.
            _ = conn.read::<Request>() => return Ok(()),
            _ = kernel.shutdown.cancelled() => {
                let failure = Failure::new(FailureKind::ShuttingDown, "the kernel is shutting down");
                return reply(conn, Err(failure)).await;
            }
        }
    }
}
