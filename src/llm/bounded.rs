//! Reading a small response body from a backend (an error's text, `/models`, `/props`) with a deadline
//! and a size bound. A server that trickles such a body, or sends one without end, must not hold a
//! slot, or the kernel's first request, for longer than the deadline.

use tokio::time::Instant;

/// How a bounded read ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BodyEnd {
    /// The whole body was read.
    Whole,
    /// The body went on past the size bound; what was read is its start.
    Cut,
    /// The deadline passed first; what was read is what had arrived.
    TimedOut,
    /// The connection broke off.
    Broken,
}

/// Reads at most `limit` bytes of `resp`'s body, before `deadline`.
pub(crate) async fn read_body(
    mut resp: reqwest::Response,
    limit: usize,
    deadline: Instant,
) -> (Vec<u8>, BodyEnd) {
    let mut body = Vec::new();
    loop {
        let chunk = match tokio::time::timeout_at(deadline, resp.chunk()).await {
            Err(_) => return (body, BodyEnd::TimedOut),
            Ok(Err(_)) => return (body, BodyEnd::Broken),
            Ok(Ok(None)) => return (body, BodyEnd::Whole),
            Ok(Ok(Some(chunk))) => chunk,
        };
        let room = limit - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return (body, BodyEnd::Cut);
        }
        body.extend_from_slice(&chunk);
    }
}
