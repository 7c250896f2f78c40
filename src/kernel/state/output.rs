//! A process's output as clients read it: a snapshot (`cat`), or the output so far followed by live
//! tokens and the exit status (`fg`, a foreground `query`). Registration happens under the state
//! lock, so no token falls between the output so far and the live stream; the exit status reaches
//! a follower only once it is durable.

use super::KernelState;
use crate::kernel::journal::writer::Ack;
use crate::proto::{Exited, Failure, MAX_FRAME_BYTES, OutputChunk, Pid, Reply, Response, pieces};
use tokio::sync::mpsc;

/// Frames a follower may fall behind before it is dropped: more than a whole default answer (USER's
/// allowance is 4000 tokens, one frame each), so only a client that stopped reading is cut off.
const FOLLOWER_BUFFER_FRAMES: usize = 8192;

/// Bytes of output text in one frame: a quarter of the frame limit leaves ample room for the frame's
/// other fields, and a long answer still takes only a few frames.
pub const OUTPUT_CHUNK_BYTES: usize = MAX_FRAME_BYTES / 4;

/// A registered follower: its channel already holds the output so far.
pub struct Follower {
    pub rx: mpsc::Receiver<Reply>,
    /// For a process that had already ended: its exit, to send once the channel is drained and the
    /// exit is durable.
    pub ended: Option<(Exited, Ack)>,
}

impl KernelState {
    /// Registers a follower of `pid` for `uid`. A process that has ended gets its output at once,
    /// and its exit status once that is durable. Followers whose clients have gone are forgotten
    /// first, so they cannot pile up on a process that never produces another token (a stopped one).
    pub fn follow(&mut self, pid: Pid, uid: u32) -> Result<Follower, Failure> {
        let p = self.owned_mut(pid, uid)?;
        p.forget_departed();
        let (tx, rx) = mpsc::channel(FOLLOWER_BUFFER_FRAMES);
        for piece in pieces(&p.output, OUTPUT_CHUNK_BYTES) {
            let _ = tx.try_send(Ok(Response::Output(OutputChunk {
                pid,
                text: piece.to_string(),
            })));
        }
        let ended = match &p.exit {
            Some(status) => {
                let exited = Exited {
                    pid,
                    status: status.clone(),
                };
                Some((exited, p.exit_ack.clone().unwrap_or_else(Ack::done)))
            }
            None => {
                p.followers.push(tx);
                None
            }
        };
        Ok(Follower { rx, ended })
    }

    /// The output of `pid` so far, for `uid` (a snapshot: nothing is registered).
    pub fn output_of(&self, pid: Pid, uid: u32) -> Result<String, Failure> {
        self.owned(pid, uid).map(|p| p.output().to_string())
    }

    /// Forgets the followers and waiters of `pid` whose clients have gone.
    pub fn forget_departed(&mut self, pid: Pid) {
        if let Some(p) = self.table.get_mut(&pid) {
            p.forget_departed();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::OUTPUT_CHUNK_BYTES;
    use crate::proto::{MAX_FRAME_BYTES, pieces};

    #[test]
    fn output_over_a_frame_is_several_pieces_each_under_the_frame_limit() {
        let text = "x".repeat(MAX_FRAME_BYTES + 10);
        let cut = pieces(&text, OUTPUT_CHUNK_BYTES);
        assert_eq!(cut.len(), 5);
        assert!(cut.iter().all(|p| p.len() <= OUTPUT_CHUNK_BYTES));
    }
}
