//! `Output`: a process's output (`cat`), or all of it so far followed by live tokens and the exit
//! status (`fg`, and `query` in the foreground through `Submit`).

use super::{Conn, Kernel, Peer, reply};
use crate::kernel::state::KernelState;
use crate::proto::{
    CodecError, Exited, Failure, FailureKind, OutputChunk, OutputRequest, Pid, Reply, Request,
    Response,
};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Frames a follower may fall behind before it is dropped: more than a whole default answer (USER's
/// allowance is 4000 tokens, one frame each), so only a client that stopped reading is cut off.
const FOLLOWER_BUFFER_FRAMES: usize = 8192;

/// A registered follower: its channel already holds the output so far.
pub struct Follower {
    rx: mpsc::Receiver<Reply>,
}

/// Registers a follower of `pid` under the state lock, so no token falls between the output so far
/// and the live stream. A process that has ended gets its output and exit status at once.
pub fn subscribe(s: &mut KernelState, pid: Pid) -> Result<Follower, Failure> {
    let p = s.get_mut(pid).ok_or_else(|| no_such_process(pid))?;
    let (tx, rx) = mpsc::channel(FOLLOWER_BUFFER_FRAMES);
    let _ = tx.try_send(Ok(Response::Output(OutputChunk {
        pid,
        text: p.output.clone(),
    })));
    match &p.exit {
        Some(status) => {
            let _ = tx.try_send(Ok(Response::Exited(Exited {
                pid,
                status: status.clone(),
            })));
        }
        None => p.followers.push(tx),
    }
    Ok(Follower { rx })
}

fn no_such_process(pid: Pid) -> Failure {
    Failure::new(
        FailureKind::NoSuchProcess,
        format!("({pid}) - No such process"),
    )
}

/// Streams a follower's frames until the process exits, the client goes away, or shutdown.
pub async fn follow(
    kernel: &Arc<Kernel>,
    conn: &mut Conn,
    mut follower: Follower,
) -> Result<(), CodecError> {
    loop {
        tokio::select! {
            frame = follower.rx.recv() => match frame {
                Some(frame) => {
                    let last = matches!(frame, Ok(Response::Exited(_)));
                    reply(conn, frame).await?;
                    if last {
                        return Ok(());
                    }
                }
                None => {
                    let failure = Failure::new(FailureKind::BadRequest, "output stream fell too far behind; follow it again");
                    return reply(conn, Err(failure)).await;
                }
            },
            // A client that sends anything, or closes, while following ends the stream.
            _ = conn.read::<Request>() => return Ok(()),
            _ = kernel.shutdown.cancelled() => {
                return reply(conn, Err(Failure::new(FailureKind::ShuttingDown, "the kernel is shutting down"))).await;
            }
        }
    }
}

pub async fn handle(
    kernel: &Arc<Kernel>,
    peer: Peer,
    req: OutputRequest,
    conn: &mut Conn,
) -> Result<(), CodecError> {
    let follower = kernel.update(|s| {
        s.owned_mut(req.pid, peer.uid)?;
        subscribe(s, req.pid)
    });
    let mut follower = match follower {
        Ok(f) => f,
        Err(failure) => return reply(conn, Err(failure)).await,
    };
    if req.follow {
        return follow(kernel, conn, follower).await;
    }
    // The snapshot is the first frame; drop the registration by not reading further.
    let snapshot = follower
        .rx
        .recv()
        .await
        .unwrap_or_else(|| Err(no_such_process(req.pid)));
    reply(conn, snapshot).await
}
