//! `Output`: a process's output (`cat`), or all of it so far followed by live tokens and the exit
//! status (`fg`, and `query` in the foreground through `Submit`); the state registers followers
//! ([`KernelState::follow`](crate::kernel::state::KernelState::follow)). Output larger than a frame
//! travels in pieces of [`OUTPUT_CHUNK_BYTES`].

use super::{Conn, Kernel, Peer, reply};
use crate::kernel::state::{Follower, OUTPUT_CHUNK_BYTES};
use crate::proto::{
    CodecError, Failure, FailureKind, OutputChunk, OutputRequest, Pid, Request, Response, pieces,
};
use std::sync::Arc;

/// Streams a follower's frames until the process exits, the client goes away, or shutdown.
pub async fn follow(
    kernel: &Arc<Kernel>,
    conn: &mut Conn,
    pid: Pid,
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
                // A process that had already ended: its exit, once durable, ends the stream.
                None if follower.ended.is_some() => {
                    let Some((exited, ack)) = follower.ended.take() else { return Ok(()) };
                    let reply_frame = match super::durable(ack, &format!("the exit of {pid}")).await {
                        Ok(()) => Ok(Response::Exited(exited)),
                        Err(failure) => Err(failure),
                    };
                    return reply(conn, reply_frame).await;
                }
                None => {
                    let failure = Failure::new(FailureKind::BadRequest, "output stream fell too far behind; follow it again");
                    return reply(conn, Err(failure)).await;
                }
            },
            // A client that sends anything, or closes, while following ends the stream.
            _ = conn.read::<Request>() => {
                drop(follower);
                kernel.update(|s| s.forget_departed(pid));
                return Ok(());
            }
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
    if req.follow {
        let follower = kernel.update(|s| s.follow(req.pid, peer.uid));
        return match follower {
            Ok(follower) => follow(kernel, conn, req.pid, follower).await,
            Err(failure) => reply(conn, Err(failure)).await,
        };
    }
    // A snapshot registers nothing: the output so far, copied under the lock, written after it.
    let snapshot = kernel.read(|s| s.output_of(req.pid, peer.uid));
    let output = match snapshot {
        Ok(output) => output,
        Err(failure) => return reply(conn, Err(failure)).await,
    };
    let pieces = pieces(&output, OUTPUT_CHUNK_BYTES);
    let last = pieces.len() - 1;
    for (i, piece) in pieces.into_iter().enumerate() {
        let chunk = OutputChunk {
            pid: req.pid,
            text: piece.to_string(),
        };
        let frame = if i == last {
            Response::Output(chunk)
        } else {
            Response::OutputPart(chunk)
        };
        reply(conn, Ok(frame)).await?;
    }
    Ok(())
}
