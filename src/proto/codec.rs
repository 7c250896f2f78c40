//! Framing and encoding, the one place that touches bincode. A frame is a 4-byte big-endian length
//! followed by that many bytes of bincode 2 (`config::standard()`, serde API) with a decode limit equal
//! to the frame limit, so no length inside a frame can make the decoder allocate more than a frame.
//! The journal's records are encoded by the same [`encode`] and [`decode`] (inside its own
//! checksummed framing, see `kernel::journal::file`). Swapping the encoder (wincode decodes the same
//! bytes) means changing this file only.
//!
//! The kernel reads its peers with [`ReadLimits`]: a frame over [`INLINE_FRAME_BYTES`] is buffered
//! only once its length is taken from a [`FrameBudget`] shared by all connections, a frame must be
//! complete within a stall limit of its first byte (or of the budget being granted, for the wait is
//! not the peer's), and a reply the peer does not take within the same limit fails the write. A peer
//! can thus neither pin memory nor a connection task for long.

use bytes::{Buf, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// The largest frame either side accepts, in bytes (and the largest journal record). Large enough
/// for the longest prompt a kernel accepts; small enough that a hostile length prefix cannot make a
/// peer allocate much. What can grow past it (a process's output) travels and is journaled in
/// bounded pieces.
pub const MAX_FRAME_BYTES: usize = 4 * 1024 * 1024;

/// Bytes of the length prefix.
pub const LENGTH_PREFIX_BYTES: usize = 4;

type WireConfig = bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<MAX_FRAME_BYTES>,
>;

fn wire_config() -> WireConfig {
    bincode::config::standard().with_limit::<MAX_FRAME_BYTES>()
}

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("frame of {len} bytes is over the {MAX_FRAME_BYTES}-byte limit")]
    FrameTooLarge { len: usize },
    #[error("connection closed in the middle of a frame")]
    TornFrame,
    #[error("undecodable frame: {0}")]
    Decode(String),
    #[error("the peer stopped in the middle of a frame for {after:?}")]
    Stalled { after: Duration },
    #[error("the peer did not take a reply for {after:?}")]
    WriteStalled { after: Duration },
    #[error("frame has {0} bytes after its message")]
    TrailingBytes(usize),
    #[error("cannot encode message: {0}")]
    Encode(String),
    #[error("i/o error on the socket: {0}")]
    Io(#[from] std::io::Error),
}

/// Encodes one message into a frame payload (without the length prefix).
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, CodecError> {
    let bytes = bincode::serde::encode_to_vec(msg, wire_config())
        .map_err(|e| CodecError::Encode(e.to_string()))?;
    if bytes.len() > MAX_FRAME_BYTES {
        return Err(CodecError::FrameTooLarge { len: bytes.len() });
    }
    Ok(bytes)
}

/// Decodes one frame payload; the whole payload must be one message.
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, CodecError> {
    let (msg, used) = bincode::serde::decode_from_slice(payload, wire_config())
        .map_err(|e| CodecError::Decode(e.to_string()))?;
    if used != payload.len() {
        return Err(CodecError::TrailingBytes(payload.len() - used));
    }
    Ok(msg)
}

/// Frames up to this size are read without taking from a [`FrameBudget`]: a request of this size
/// (every verb but a long prompt) costs nothing to hold, and per connection the bytes held without
/// budget stay under two of these (a header's worth of read-ahead plus one small frame).
pub const INLINE_FRAME_BYTES: usize = 16 * 1024;

/// Bytes asked of the socket per read while no large frame is under way: a few small frames, so a
/// client sending requests back to back costs a read per few frames, not per frame.
const READ_CHUNK_BYTES: usize = 8 * 1024;

/// A byte budget shared by many connections for the frames they are reading: a frame over
/// [`INLINE_FRAME_BYTES`] takes its length from the budget before its payload is buffered and gives it
/// back once decoded, so peers announcing big frames and trickling them hold at most the budget
/// between them, whatever their number.
#[derive(Clone, Debug)]
pub struct FrameBudget {
    bytes: Arc<Semaphore>,
    total: usize,
}

impl FrameBudget {
    pub fn new(total_bytes: usize) -> FrameBudget {
        let total = total_bytes.clamp(1, Semaphore::MAX_PERMITS);
        FrameBudget {
            bytes: Arc::new(Semaphore::new(total)),
            total,
        }
    }

    /// Bytes not held by any frame now.
    pub fn available(&self) -> usize {
        self.bytes.available_permits()
    }
}

/// What a reading side allows its peer: a budget for large frames, and how long a frame may take
/// from its first byte to its last (a peer that stops mid-frame is cut off, and the budget freed).
#[derive(Clone, Debug)]
pub struct ReadLimits {
    pub budget: FrameBudget,
    pub stall: Duration,
}

/// A framed, typed connection over any byte stream (a Unix socket in practice). Reading is
/// cancel-safe (the kernel selects on it): a frame read halfway stays buffered for the next call.
pub struct Connection<S> {
    stream: S,
    /// Bytes read but not yet decoded: the frame under way, and what one read brought after it.
    /// (`BytesMut`: dropping a decoded frame from the front is O(1).)
    buffer: BytesMut,
    limits: Option<ReadLimits>,
    /// Writes that take longer than this (a peer that does not read) fail.
    write_timeout: Option<Duration>,
    /// The budget taken for the large frame being read.
    permit: Option<OwnedSemaphorePermit>,
    /// When the frame under way must be complete (set at its first byte, with `limits`).
    deadline: Option<Instant>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    /// A connection that waits for its peer as long as it takes (a client of the kernel).
    pub fn new(stream: S) -> Connection<S> {
        Connection {
            stream,
            buffer: BytesMut::new(),
            limits: None,
            write_timeout: None,
            permit: None,
            deadline: None,
        }
    }

    /// A connection that bounds what its peer can make it hold and wait for (the kernel's side):
    /// large frames come out of `limits.budget`, a frame must arrive within `limits.stall` of its
    /// first byte, and a write must be taken by the peer within `limits.stall`.
    pub fn with_limits(stream: S, limits: ReadLimits) -> Connection<S> {
        let mut conn = Connection::new(stream);
        conn.write_timeout = Some(limits.stall);
        conn.limits = Some(limits);
        conn
    }

    /// Sets how long a write may wait for the peer to take it (`None`: as long as it takes).
    pub fn set_write_timeout(&mut self, limit: Option<Duration>) {
        self.write_timeout = limit;
    }

    /// Reads the next message. `Ok(None)` is a clean close between frames; a close inside a frame is
    /// [`CodecError::TornFrame`].
    pub async fn read<T: DeserializeOwned>(&mut self) -> Result<Option<T>, CodecError> {
        loop {
            if let Some(end) = self.complete_frame()? {
                let decoded = decode(&self.buffer[LENGTH_PREFIX_BYTES..end]);
                self.finish_frame(end);
                return decoded.map(Some);
            }
            let want = self.bytes_wanted().await?;
            let mut chunk = [0u8; READ_CHUNK_BYTES];
            let want = want.min(chunk.len());
            let stalled = self.stalled();
            let read = self.stream.read(&mut chunk[..want]);
            let n = match self.deadline {
                Some(deadline) => tokio::time::timeout_at(deadline, read)
                    .await
                    .map_err(|_| stalled)??,
                None => read.await?,
            };
            if n == 0 {
                return match self.buffer.is_empty() {
                    true => Ok(None),
                    false => Err(CodecError::TornFrame),
                };
            }
            self.buffer.extend_from_slice(&chunk[..n]);
            self.start_deadline();
        }
    }

    /// The end of the frame at the head of the buffer, once it is all there.
    fn complete_frame(&self) -> Result<Option<usize>, CodecError> {
        let Some(len) = self.announced()? else {
            return Ok(None);
        };
        let end = LENGTH_PREFIX_BYTES + len;
        Ok((self.buffer.len() >= end).then_some(end))
    }

    /// The length the frame at the head of the buffer announces, once its prefix is there.
    fn announced(&self) -> Result<Option<usize>, CodecError> {
        let Some(prefix) = self.buffer.first_chunk::<LENGTH_PREFIX_BYTES>() else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(*prefix) as usize;
        if len > MAX_FRAME_BYTES {
            return Err(CodecError::FrameTooLarge { len });
        }
        Ok(Some(len))
    }

    /// How many bytes to read next: the rest of a large frame (once its budget is taken), else a
    /// chunk. Never more than the frame under way needs, so the buffer holds one large frame at most.
    async fn bytes_wanted(&mut self) -> Result<usize, CodecError> {
        let Some(len) = self.announced()? else {
            return Ok(READ_CHUNK_BYTES);
        };
        let end = LENGTH_PREFIX_BYTES + len;
        if len > INLINE_FRAME_BYTES && self.permit.is_none() {
            if let Some(limits) = &self.limits {
                let budget = &limits.budget;
                // A frame larger than the whole budget (a tiny test budget) takes all of it.
                let need = len.min(budget.total) as u32;
                let stall = limits.stall;
                // Waiting here is the kernel's doing, not the peer's: the frame's clock starts
                // again once it may be read. Waiters are served in turn (the semaphore is fair),
                // so peers holding the budget and stalling cannot starve others.
                let permit = Arc::clone(&budget.bytes).acquire_many_owned(need).await;
                // The semaphore is never closed.
                self.permit = permit.ok();
                self.deadline = Some(Instant::now() + stall);
            }
            self.buffer.reserve(end.saturating_sub(self.buffer.len()));
        }
        Ok(end.saturating_sub(self.buffer.len()).max(1))
    }

    /// Drops the frame ending at `end` from the buffer and gives its budget back.
    fn finish_frame(&mut self, end: usize) {
        self.buffer.advance(end);
        self.permit = None;
        self.deadline = None;
        if self.buffer.capacity() > 2 * INLINE_FRAME_BYTES {
            self.buffer = BytesMut::from(&self.buffer[..]);
        }
        self.start_deadline();
    }

    /// Starts the clock of a frame whose first bytes are in the buffer.
    fn start_deadline(&mut self) {
        if let (Some(limits), None, false) = (&self.limits, self.deadline, self.buffer.is_empty()) {
            self.deadline = Some(Instant::now() + limits.stall);
        }
    }

    fn stalled(&self) -> CodecError {
        CodecError::Stalled {
            after: self.limits.as_ref().map_or(Duration::ZERO, |l| l.stall),
        }
    }

    /// Writes one message and flushes it; with limits, fails if the peer does not take it in time.
    pub async fn write<T: Serialize>(&mut self, msg: &T) -> Result<(), CodecError> {
        let payload = encode(msg)?;
        let mut frame = Vec::with_capacity(LENGTH_PREFIX_BYTES + payload.len());
        frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        frame.extend_from_slice(&payload);
        let stream = &mut self.stream;
        let send = async move {
            stream.write_all(&frame).await?;
            stream.flush().await
        };
        match self.write_timeout {
            Some(limit) => tokio::time::timeout(limit, send)
                .await
                .map_err(|_| CodecError::WriteStalled { after: limit })??,
            None => send.await?,
        }
        Ok(())
    }

    /// Gives back the stream (bytes read ahead but not yet decoded are dropped).
    pub fn into_inner(self) -> S {
        self.stream
    }

    /// The underlying stream, e.g. for peer credentials.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }
}

#[cfg(test)]
mod tests;
