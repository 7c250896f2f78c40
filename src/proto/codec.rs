//! Framing and encoding, the one place that touches bincode. A frame is a 4-byte big-endian length
//! followed by that many bytes of bincode 2 (`config::standard()`, serde API) with a decode limit equal
//! to the frame limit, so no length inside a frame can make the decoder allocate more than a frame.
//! The journal's records are encoded by the same [`encode`] and [`decode`] (inside its own
//! checksummed framing, see `kernel::journal::file`). Swapping the encoder (wincode decodes the same
//! bytes) means changing this file only.

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::{Framed, LengthDelimitedCodec};

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

fn length_codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .big_endian()
        .length_field_length(LENGTH_PREFIX_BYTES)
        .max_frame_length(MAX_FRAME_BYTES)
        .new_codec()
}

/// A framed, typed connection over any byte stream (a Unix socket in practice).
pub struct Connection<S> {
    framed: Framed<S, LengthDelimitedCodec>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    pub fn new(stream: S) -> Connection<S> {
        Connection {
            framed: Framed::new(stream, length_codec()),
        }
    }

    /// Reads the next message. `Ok(None)` is a clean close between frames; a close inside a frame is
    /// [`CodecError::TornFrame`].
    pub async fn read<T: DeserializeOwned>(&mut self) -> Result<Option<T>, CodecError> {
        match self.framed.next().await {
            None => Ok(None),
            Some(Ok(payload)) => decode(&payload).map(Some),
            Some(Err(e)) => Err(classify_io_error(e)),
        }
    }

    /// Writes one message and flushes it.
    pub async fn write<T: Serialize>(&mut self, msg: &T) -> Result<(), CodecError> {
        let payload = encode(msg)?;
        self.framed
            .send(Bytes::from(payload))
            .await
            .map_err(classify_io_error)
    }

    /// Gives back the stream (bytes read ahead but not yet decoded are dropped).
    pub fn into_inner(self) -> S {
        self.framed.into_inner()
    }

    /// The underlying stream, e.g. for peer credentials.
    pub fn get_ref(&self) -> &S {
        self.framed.get_ref()
    }
}

/// `LengthDelimitedCodec` reports its own limits as `InvalidData` / `UnexpectedEof` I/O errors; turn
/// them into the variants a peer's error reply should name.
fn classify_io_error(e: std::io::Error) -> CodecError {
    match e.kind() {
        std::io::ErrorKind::InvalidData => CodecError::FrameTooLarge {
            len: MAX_FRAME_BYTES + 1,
        },
        std::io::ErrorKind::UnexpectedEof => CodecError::TornFrame,
        _ if e.to_string().contains("bytes remaining on stream") => CodecError::TornFrame,
        _ => CodecError::Io(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Hello, Request};
    use tokio::io::AsyncWriteExt;

    fn hello() -> Request {
        Request::Hello(Hello {
            protocol_version: 1,
            peer: "t".into(),
        })
    }

    #[tokio::test]
    async fn oversized_length_prefix_is_rejected_before_allocating() {
        let (mut a, b) = tokio::io::duplex(64);
        let mut conn = Connection::new(b);
        a.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
        let err = conn.read::<Request>().await.unwrap_err();
        assert!(matches!(err, CodecError::FrameTooLarge { .. }), "{err}");
    }

    #[tokio::test]
    async fn torn_frame_at_eof_is_an_error_not_a_clean_close() {
        let (mut a, b) = tokio::io::duplex(64);
        let mut conn = Connection::new(b);
        a.write_all(&10u32.to_be_bytes()).await.unwrap();
        a.write_all(b"abc").await.unwrap();
        drop(a);
        let err = conn.read::<Request>().await.unwrap_err();
        assert!(matches!(err, CodecError::TornFrame), "{err}");
    }

    #[tokio::test]
    async fn clean_close_between_frames_reads_as_none() {
        let (a, b) = tokio::io::duplex(64);
        drop(a);
        assert!(
            Connection::new(b)
                .read::<Request>()
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn two_frames_in_one_read_are_both_delivered() {
        let (mut a, b) = tokio::io::duplex(1024);
        let mut bytes = Vec::new();
        for _ in 0..2 {
            let payload = encode(&hello()).unwrap();
            bytes.extend_from_slice(&(payload.len() as u32).to_be_bytes());
            bytes.extend_from_slice(&payload);
        }
        a.write_all(&bytes).await.unwrap();
        let mut conn = Connection::new(b);
        assert_eq!(conn.read::<Request>().await.unwrap(), Some(hello()));
        assert_eq!(conn.read::<Request>().await.unwrap(), Some(hello()));
    }

    #[test]
    fn trailing_bytes_after_a_message_are_rejected() {
        let mut payload = encode(&hello()).unwrap();
        payload.push(0);
        assert!(matches!(
            decode::<Request>(&payload),
            Err(CodecError::TrailingBytes(1))
        ));
    }

    #[test]
    fn unknown_variant_tag_is_a_decode_error() {
        assert!(matches!(
            decode::<Request>(&[200]),
            Err(CodecError::Decode(_))
        ));
    }

    #[test]
    fn huge_inner_length_does_not_allocate_past_the_limit() {
        // Variant 1 (Submit), then a string length of u64::MAX in varint form.
        let payload = [1u8, 253, 255, 255, 255, 255, 255, 255, 255, 255];
        assert!(matches!(
            decode::<Request>(&payload),
            Err(CodecError::Decode(_))
        ));
    }

    /// A fast randomized decoder test (the fuzz targets run the same decoder for minutes): random
    /// payloads and bit-flipped valid ones never panic and never decode with trailing garbage.
    #[test]
    fn random_and_mutated_payloads_never_panic() {
        use crate::proto::{Reply, SubmitRequest};
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let valid = encode(&Request::Submit(SubmitRequest {
            prompt: "hello".into(),
            system: None,
            process_type: crate::proto::ProcessType::User,
            max_tokens: Some(9),
            nice: 0,
            attach: false,
        }))
        .unwrap();
        for _ in 0..20_000 {
            let len = (next() % 64) as usize;
            let random: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let _ = decode::<Request>(&random);
            let _ = decode::<Reply>(&random);
            let mut mutated = valid.clone();
            let at = (next() as usize) % mutated.len();
            mutated[at] ^= 1 << (next() % 8);
            if let Ok(msg) = decode::<Request>(&mutated) {
                assert_eq!(
                    encode(&msg).unwrap().len(),
                    mutated.len(),
                    "decoded bytes re-encode whole"
                );
            }
        }
    }
}
