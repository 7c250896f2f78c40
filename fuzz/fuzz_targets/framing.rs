//! The length-delimited framing and the decoder together, as a connection reads them: arbitrary
//! bytes arriving in chunks of arbitrary size (the first input byte), read frame after frame until a
//! clean close or an error. Nothing may panic, and each frame read is at most the frame limit.

#![no_main]

use libfuzzer_sys::fuzz_target;
use llmkernel::proto::{Connection, Request};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};

/// A byte source that hands out its bytes `step` at a time, as a socket might.
struct Chunked<'a> {
    data: &'a [u8],
    step: usize,
}

impl AsyncRead for Chunked<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = self.step.min(self.data.len()).min(buf.remaining());
        let (head, tail) = self.data.split_at(n);
        buf.put_slice(head);
        self.data = tail;
        Poll::Ready(Ok(()))
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&step, bytes)) = data.split_first() else {
        return;
    };
    let stream = Chunked {
        data: bytes,
        step: usize::from(step.max(1)),
    };
    let mut conn = Connection::new(tokio::io::join(stream, tokio::io::sink()));
    futures::executor::block_on(async {
        // Every frame takes at least its 4-byte prefix, so this bound is never the one that stops.
        for _ in 0..=bytes.len() / 4 {
            match conn.read::<Request>().await {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return,
            }
        }
        panic!("more frames than the input can hold");
    });
});
