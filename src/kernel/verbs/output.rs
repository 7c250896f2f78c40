//! `Output`: a process's output (`cat`), or all of it so far followed by live tokens and the exit
//! status (`fg`, and `query` in the foreground through `Submit`). Output larger than a frame may be
//! travels in pieces of [`OUTPUT_CHUNK_BYTES`].

use super::{Conn, Kernel, Peer, reply};
use crate::kernel::state::KernelState;
use crate::proto::{
    CodecError, Exited, Failure, FailureKind, MAX_FRAME_BYTES, OutputChunk, OutputRequest, Pid,
    Reply, Request, Response,
};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Frames a follower may fall behind before it is dropped: more than a whole default answer (USER's
/// allowance is 4000 tokens, one frame each), so only a client that stopped reading is cut off.
const FOLLOWER_BUFFER_FRAMES: usize = 8192;

/// Bytes of output text in one frame: a quarter of the frame limit leaves ample room for the frame's
/// other fields, and a long answer still takes only a few frames.
pub const OUTPUT_CHUNK_BYTES: usize = MAX_FRAME_BYTES / 4;

/// A registered follower: its channel already holds the output so far.
pub struct Follower {
    rx: mpsc::Receiver<Reply>,
}

/// `text` in pieces of at most `max_bytes` (at least one character each), cut at character
/// boundaries; an empty text is one empty piece.
pub fn pieces(text: &str, max_bytes: usize) -> Vec<&str> {
    let mut pieces = Vec::with_capacity(text.len() / max_bytes.max(1) + 1);
    let mut rest = text;
    while rest.len() > max_bytes {
        let mut cut = max_bytes;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        if cut == 0 {
            // A limit below one character's width: take the whole character.
            cut = rest.chars().next().map_or(rest.len(), char::len_utf8);
        }
        let (piece, tail) = rest.split_at(cut);
        pieces.push(piece);
        rest = tail;
    }
    if !rest.is_empty() || pieces.is_empty() {
        pieces.push(rest);
    }
    pieces
}

/// Registers a follower of `pid` under the state lock, so no token falls between the output so far
/// and the live stream. A process that has ended gets its output and exit status at once. Followers
/// whose clients have gone are forgotten first, so they cannot pile up on a process that never
/// produces another token (a stopped one).
pub fn subscribe(s: &mut KernelState, pid: Pid) -> Result<Follower, Failure> {
    let p = s.get_mut(pid).ok_or_else(|| no_such_process(pid))?;
    p.forget_departed();
    let (tx, rx) = mpsc::channel(FOLLOWER_BUFFER_FRAMES);
    for piece in pieces(&p.output, OUTPUT_CHUNK_BYTES) {
        let _ = tx.try_send(Ok(Response::Output(OutputChunk {
            pid,
            text: piece.to_string(),
        })));
    }
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
                None => {
                    let failure = Failure::new(FailureKind::BadRequest, "output stream fell too far behind; follow it again");
                    return reply(conn, Err(failure)).await;
                }
            },
            // A client that sends anything, or closes, while following ends the stream.
            _ = conn.read::<Request>() => {
                drop(follower);
                kernel.update(|s| s.get_mut(pid).map(|p| p.forget_departed()));
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
        let follower = kernel.update(|s| {
            s.owned_mut(req.pid, peer.uid)?;
            subscribe(s, req.pid)
        });
        return match follower {
            Ok(follower) => follow(kernel, conn, req.pid, follower).await,
            Err(failure) => reply(conn, Err(failure)).await,
        };
    }
    // A snapshot registers nothing: the output so far, copied under the lock, written after it.
    let snapshot = kernel.read(|s| s.owned(req.pid, peer.uid).map(|p| p.output.clone()));
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

#[cfg(test)]
mod tests {
    use super::pieces;

    #[test]
    fn pieces_cut_at_character_boundaries_and_lose_nothing() {
        let text = "aé€😀".repeat(50);
        for max in [1, 2, 3, 4, 5, 7, 64, 10_000] {
            let cut = pieces(&text, max);
            assert_eq!(cut.concat(), text, "max {max}");
            let widest = text.chars().map(char::len_utf8).max().unwrap();
            assert!(cut.iter().all(|p| p.len() <= max.max(widest)), "max {max}");
            assert!(cut.iter().all(|p| !p.is_empty()), "max {max}");
        }
    }

    #[test]
    fn an_empty_output_is_one_empty_piece() {
        assert_eq!(pieces("", 4), [""]);
    }

    #[test]
    fn output_over_a_frame_is_several_pieces_each_under_the_frame_limit() {
        let text = "x".repeat(crate::proto::MAX_FRAME_BYTES + 10);
        let cut = pieces(&text, super::OUTPUT_CHUNK_BYTES);
        assert_eq!(cut.len(), 5);
        assert!(cut.iter().all(|p| p.len() <= super::OUTPUT_CHUNK_BYTES));
    }
}
