//! `Wait`: block until a process ends, answer its exit status and reap it (`wait`). A process that has
//! already ended (a zombie) is answered and reaped at once.

use super::{Conn, Kernel, Peer, reply};
use crate::proto::{
    CodecError, ExitStatus, Exited, Failure, FailureKind, ProcessState, Request, Response,
    WaitRequest,
};
use std::sync::Arc;
use tokio::sync::oneshot;

enum Outcome {
    Now(ExitStatus),
    Later(oneshot::Receiver<ExitStatus>),
}

pub async fn handle(
    kernel: &Arc<Kernel>,
    peer: Peer,
    req: WaitRequest,
    conn: &mut Conn,
) -> Result<(), CodecError> {
    let outcome = kernel.update(|s| {
        let p = s.owned_mut(req.pid, peer.uid)?;
        if p.state == ProcessState::Zombie && !p.collected {
            let status = p.exit.clone().unwrap_or(ExitStatus::Finished);
            p.collected = true;
            s.reap(req.pid);
            return Ok(Outcome::Now(status));
        }
        // Waiters whose clients have gone are forgotten first: a process that never ends (a stopped
        // one) would otherwise keep one per `wait` ever sent to it.
        p.forget_departed();
        let (tx, rx) = oneshot::channel();
        p.waiters.push(tx);
        Ok::<_, Failure>(Outcome::Later(rx))
    });
    let status = match outcome {
        Err(failure) => return reply(conn, Err(failure)).await,
        Ok(Outcome::Now(status)) => status,
        Ok(Outcome::Later(mut rx)) => tokio::select! {
            status = &mut rx => match status {
                Ok(status) => status,
                Err(_) => {
                    let failure = Failure::new(FailureKind::NoSuchProcess, format!("({}) - No such process", req.pid));
                    return reply(conn, Err(failure)).await;
                }
            },
            // The waiter went away: its receiver drops, and the process stays a zombie for the next wait.
            _ = conn.read::<Request>() => {
                drop(rx);
                kernel.update(|s| s.get_mut(req.pid).map(|p| p.forget_departed()));
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
