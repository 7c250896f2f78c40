//! `Wait`: block until a process ends, answer its exit status and reap it (`wait`). A process that has
//! already ended (a zombie) is answered and reaped at once. Either way the answer comes only once the
//! exit (and the reaping) is durable.

use super::{Conn, Kernel, Peer, durable, reply};
use crate::kernel::state::{Collect, no_such_process};
use crate::proto::{CodecError, Exited, Failure, FailureKind, Request, Response, WaitRequest};
use std::sync::Arc;

pub async fn handle(
    kernel: &Arc<Kernel>,
    peer: Peer,
    req: WaitRequest,
    conn: &mut Conn,
) -> Result<(), CodecError> {
    let status = match kernel.update(|s| s.collect(peer.uid, req.pid)) {
        Err(failure) => return reply(conn, Err(failure)).await,
        Ok(Collect::Now(status, ack)) => {
            if let Err(failure) = durable(ack, &format!("reaping {}", req.pid)).await {
                return reply(conn, Err(failure)).await;
            }
            status
        }
        Ok(Collect::Later(mut rx)) => tokio::select! {
            status = &mut rx => match status {
                Ok(status) => status,
                Err(_) => {
                    return reply(conn, Err(no_such_process(req.pid))).await;
                }
            },
            // The waiter went away: its receiver drops, and the process stays a zombie for the next wait.
            _ = conn.read::<Request>() => {
                drop(rx);
                kernel.update(|s| s.forget_departed(req.pid));
                return Ok(());
            }
            _ = kernel.shutdown.cancelled() => {
                return reply(conn, Err(Failure::new(FailureKind::ShuttingDown, "the kernel is shutting down"))).await;
            }
        },
    };
    reply(
        conn,
        Ok(Response::Exited(Exited {
            pid: req.pid,
            status,
        })),
    )
    .await
}
