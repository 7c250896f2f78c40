//! The codec's tests: framing limits, torn and trailing frames, randomized decoding, and the
//! limits the kernel puts on its peers (frame budget, stall limits, cancel-safe reads).

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

fn framed(msg: &Request) -> Vec<u8> {
    let payload = encode(msg).unwrap();
    let mut bytes = (payload.len() as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(&payload);
    bytes
}

fn big_submit(prompt_bytes: usize) -> Request {
    Request::Submit(crate::proto::SubmitRequest {
        prompt: "p".repeat(prompt_bytes),
        system: None,
        process_type: crate::proto::ProcessType::User,
        max_tokens: None,
        nice: 0,
        attach: false,
    })
}

fn limits(budget: &FrameBudget) -> ReadLimits {
    ReadLimits {
        budget: budget.clone(),
        stall: Duration::from_secs(3600),
    }
}

#[tokio::test]
async fn large_frames_share_one_budget_and_give_it_back_once_read() {
    use futures::FutureExt;
    let budget = FrameBudget::new(30_000);
    let big = framed(&big_submit(20_000));
    let (mut peer_a, a) = tokio::io::duplex(64 * 1024);
    let (mut peer_b, b) = tokio::io::duplex(64 * 1024);
    let mut conn_a = Connection::with_limits(a, limits(&budget));
    let mut conn_b = Connection::with_limits(b, limits(&budget));
    peer_a.write_all(&big[..12_000]).await.unwrap();
    peer_b.write_all(&big).await.unwrap();
    // A has announced its frame and sent half: it holds its length of the budget.
    assert!(conn_a.read::<Request>().now_or_never().is_none());
    assert_eq!(budget.available(), 30_000 - (big.len() - 4));
    // B's whole frame is in its socket, but it must wait for A's share.
    assert!(conn_b.read::<Request>().now_or_never().is_none());
    assert!(
        conn_b.buffer.len() <= READ_CHUNK_BYTES,
        "B buffered no more than a chunk"
    );
    peer_a.write_all(&big[12_000..]).await.unwrap();
    assert_eq!(
        conn_a.read::<Request>().await.unwrap(),
        Some(big_submit(20_000))
    );
    assert_eq!(budget.available(), 30_000, "A's share came back");
    assert_eq!(
        conn_b.read::<Request>().await.unwrap(),
        Some(big_submit(20_000))
    );
    assert_eq!(budget.available(), 30_000);
    assert!(
        conn_a.buffer.capacity() <= 2 * INLINE_FRAME_BYTES,
        "no idle big buffer"
    );
}

#[tokio::test]
async fn a_peer_that_stops_mid_frame_is_cut_off_and_its_budget_freed() {
    let budget = FrameBudget::new(MAX_FRAME_BYTES);
    let stall = Duration::from_millis(200);
    let (mut peer, ours) = tokio::io::duplex(64 * 1024);
    let mut conn = Connection::with_limits(
        ours,
        ReadLimits {
            budget: budget.clone(),
            stall,
        },
    );
    peer.write_all(&framed(&hello())).await.unwrap();
    assert_eq!(conn.read::<Request>().await.unwrap(), Some(hello()));
    let big = framed(&big_submit(1_000_000));
    peer.write_all(&big[..50_000]).await.unwrap();
    let err = conn.read::<Request>().await.unwrap_err();
    assert!(
        matches!(err, CodecError::Stalled { after } if after == stall),
        "{err}"
    );
    drop(conn);
    assert_eq!(budget.available(), MAX_FRAME_BYTES);
}

#[tokio::test]
async fn idle_time_between_frames_is_not_a_stall() {
    let budget = FrameBudget::new(MAX_FRAME_BYTES);
    let (mut peer, ours) = tokio::io::duplex(1024);
    let stall = Duration::from_millis(200);
    let mut conn = Connection::with_limits(ours, ReadLimits { budget, stall });
    let later = async {
        tokio::time::sleep(stall * 3).await;
        peer.write_all(&framed(&hello())).await.unwrap();
        peer
    };
    let (read, _peer) = tokio::join!(conn.read::<Request>(), later);
    assert_eq!(read.unwrap(), Some(hello()));
}

#[tokio::test]
async fn a_reply_the_peer_does_not_take_fails_after_the_stall_limit() {
    let budget = FrameBudget::new(MAX_FRAME_BYTES);
    let (_peer, ours) = tokio::io::duplex(1024);
    let stall = Duration::from_millis(200);
    let mut conn = Connection::with_limits(ours, ReadLimits { budget, stall });
    let err = conn.write(&big_submit(100_000)).await.unwrap_err();
    assert!(
        matches!(err, CodecError::WriteStalled { after } if after == stall),
        "{err}"
    );
}

#[tokio::test]
async fn a_read_cancelled_mid_frame_resumes_where_it_stopped() {
    use futures::FutureExt;
    let (mut peer, ours) = tokio::io::duplex(64 * 1024);
    let mut conn = Connection::new(ours);
    let bytes = framed(&big_submit(30_000));
    for piece in bytes.chunks(7_000) {
        peer.write_all(piece).await.unwrap();
        if let Some(done) = conn.read::<Request>().now_or_never() {
            assert_eq!(done.unwrap(), Some(big_submit(30_000)));
            return;
        }
    }
    assert_eq!(
        conn.read::<Request>().await.unwrap(),
        Some(big_submit(30_000))
    );
}

#[tokio::test]
async fn waiting_for_the_budget_is_not_the_peers_stall() {
    use futures::FutureExt;
    let budget = FrameBudget::new(30_000);
    let big = framed(&big_submit(20_000));
    let (mut peer_a, a) = tokio::io::duplex(64 * 1024);
    let (mut peer_b, b) = tokio::io::duplex(64 * 1024);
    let mut conn_a = Connection::with_limits(a, limits(&budget));
    let stall = Duration::from_millis(100);
    let limits_b = ReadLimits {
        budget: budget.clone(),
        stall,
    };
    let mut conn_b = Connection::with_limits(b, limits_b);
    peer_a.write_all(&big[..12_000]).await.unwrap();
    assert!(conn_a.read::<Request>().now_or_never().is_none());
    peer_b.write_all(&big).await.unwrap();
    let a_later = async {
        tokio::time::sleep(stall * 3).await;
        peer_a.write_all(&big[12_000..]).await.unwrap();
        conn_a.read::<Request>().await
    };
    let (b_read, a_read) = tokio::join!(conn_b.read::<Request>(), a_later);
    assert_eq!(a_read.unwrap(), Some(big_submit(20_000)));
    assert_eq!(b_read.unwrap(), Some(big_submit(20_000)));
}
