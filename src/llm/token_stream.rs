//! The events of one streamed generation, read from the response body through the bounded SSE decoder
//! ([`super::event_stream`]), with the backend's echo of a continuation prefix removed. Deadlines count
//! from the last *progress* (an event that means something: text, usage, the finish), not from the
//! last byte, so a server that keeps the connection busy with keep-alive comments or empty chunks but
//! never produces a token is caught as stalled.

use super::choice::ChoiceDelta;
use super::continuation::EchoFilter;
use super::error::BackendError;
use super::event_stream::{DecodeError, EventDecoder};
use super::sse::{ChunkError, StreamEvent, parse_chunk, parse_structured};
use futures::{Stream, StreamExt};
use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Duration;
use tokio::time::Instant;

/// The response body as it arrives, transport errors already in the user's words.
pub(crate) type ByteStream = Pin<Box<dyn Stream<Item = Result<bytes::Bytes, BackendError>> + Send>>;

/// The events of one streamed generation (see the module docs).
pub struct TokenStream {
    bytes: ByteStream,
    decoder: EventDecoder,
    pending: VecDeque<StreamEvent>,
    filter: EchoFilter,
    url: String,
    first_token_timeout: Duration,
    token_timeout: Duration,
    /// Whether the stream has made progress yet (which timeout applies).
    started: bool,
    /// When the stream last made progress (or was opened).
    last_progress: Instant,
    /// The body has ended; events still in the decoder are read out.
    eof: bool,
    done: bool,
    /// Chunks are read whole, as [`StreamEvent::Choice`]s (see [`super::sse::parse_structured`]).
    structured: bool,
}

impl TokenStream {
    /// A stream over `bytes`, continuing `prefix` (empty for a fresh generation).
    pub(crate) fn new(
        bytes: ByteStream,
        prefix: &str,
        url: String,
        first_token_timeout: Duration,
        token_timeout: Duration,
    ) -> TokenStream {
        TokenStream {
            bytes,
            decoder: EventDecoder::new(),
            pending: VecDeque::new(),
            filter: EchoFilter::new(prefix),
            url,
            first_token_timeout,
            token_timeout,
            started: false,
            last_progress: Instant::now(),
            eof: false,
            done: false,
            structured: false,
        }
    }

    /// The stream read whole, choice by choice (for a request with tools, several choices or
    /// log-probabilities).
    pub(crate) fn structured(mut self, on: bool) -> TokenStream {
        self.structured = on;
        self
    }

    /// The events of a whole answer (one JSON completion, from a server that did not stream), as
    /// its stream would have carried them.
    pub(crate) fn whole(
        answer: &str,
        prefix: &str,
        url: String,
        first_token_timeout: Duration,
        token_timeout: Duration,
        structured: bool,
    ) -> Result<TokenStream, BackendError> {
        let nothing: ByteStream = Box::pin(futures::stream::empty());
        let mut stream = TokenStream::new(nothing, prefix, url, first_token_timeout, token_timeout)
            .structured(structured);
        stream.handle(answer)?;
        stream.end();
        Ok(stream)
    }

    /// The next event; `None` when the stream has ended cleanly (`[DONE]` or the server closed it).
    pub async fn next(&mut self) -> Option<Result<StreamEvent, BackendError>> {
        loop {
            if let Some(ev) = self.pending.pop_front() {
                return Some(Ok(ev));
            }
            if self.done {
                return None;
            }
            if let Err(e) = self.fill().await {
                self.done = true;
                return Some(Err(e));
            }
        }
    }

    /// Handles one decoded event, or reads more of the body.
    async fn fill(&mut self) -> Result<(), BackendError> {
        if let Some(data) = self.decoder.next_event() {
            return self.handle(&data);
        }
        if self.eof {
            self.end();
            return Ok(());
        }
        let timeout = if self.started {
            self.token_timeout
        } else {
            self.first_token_timeout
        };
        let url = self.url.clone();
        let next =
            match tokio::time::timeout_at(self.last_progress + timeout, self.bytes.next()).await {
                Ok(next) => next,
                Err(_) if self.started => return Err(BackendError::Stalled { url, timeout }),
                Err(_) => return Err(BackendError::FirstTokenTimeout { url, timeout }),
            };
        let decoded = match next {
            None => {
                self.eof = true;
                self.decoder.finish()
            }
            Some(Err(e)) => return Err(e),
            Some(Ok(chunk)) => self.decoder.push(&chunk),
        };
        decoded.map_err(|e: DecodeError| BackendError::Malformed {
            url,
            detail: e.to_string(),
        })
    }

    /// Queues what one event's data means.
    fn handle(&mut self, data: &str) -> Result<(), BackendError> {
        let data = data.trim();
        if data == "[DONE]" {
            self.end();
            return Ok(());
        }
        if data.is_empty() {
            return Ok(());
        }
        let parse = if self.structured {
            parse_structured
        } else {
            parse_chunk
        };
        let parsed = parse(data).map_err(|e| match e {
            ChunkError::Malformed(detail) => BackendError::Malformed {
                url: self.url.clone(),
                detail,
            },
            ChunkError::Reported(detail) => BackendError::Reported {
                url: self.url.clone(),
                detail,
            },
        })?;
        if !parsed.is_empty() {
            self.started = true;
            self.last_progress = Instant::now();
        }
        for ev in parsed {
            match ev {
                StreamEvent::Text(piece) => {
                    let text = self.filter.push(&piece);
                    if !text.is_empty() {
                        self.pending.push_back(StreamEvent::Text(text));
                    }
                }
                // Choice 0's text has the continuation's echo removed like a plain answer's.
                StreamEvent::Choice(mut delta) if delta.index == 0 => {
                    if let Some(piece) = delta.content.take() {
                        delta.content = Some(self.filter.push(&piece)).filter(|t| !t.is_empty());
                    }
                    if !delta.is_empty() {
                        self.pending.push_back(StreamEvent::Choice(delta));
                    }
                }
                other => self.pending.push_back(other),
            }
        }
        Ok(())
    }

    fn end(&mut self) {
        self.done = true;
        let held = self.filter.finish();
        if held.is_empty() {
            return;
        }
        if self.structured {
            // Held text belongs before the finish: it goes in front of choice 0's last delta.
            let delta = ChoiceDelta {
                content: Some(held),
                ..Default::default()
            };
            let at = self
                .pending
                .iter()
                .position(|e| matches!(e, StreamEvent::Choice(d) if d.index == 0 && d.finish_reason.is_some()));
            self.pending
                .insert(at.unwrap_or(self.pending.len()), StreamEvent::Choice(delta));
        } else {
            self.pending.push_back(StreamEvent::Text(held));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "http://backend.test/v1";
    const TEXT: &str = "data: {\"choices\":[{\"delta\":{\"content\":\"hi \"}}]}\n\n";
    const EMPTY: &str = "data: {\"choices\":[{\"delta\":{}}]}\n\n";

    fn stream_of(bytes: impl Stream<Item = bytes::Bytes> + Send + 'static) -> TokenStream {
        let bytes: ByteStream = Box::pin(bytes.map(Ok));
        let short = Duration::from_millis(200);
        TokenStream::new(bytes, "", URL.into(), short, short)
    }

    /// `first`, then `forever` every millisecond without end.
    fn endless(first: &'static str, forever: &'static str) -> TokenStream {
        let rest = futures::stream::unfold((), move |()| async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            Some((bytes::Bytes::from(forever), ()))
        });
        stream_of(futures::stream::iter([bytes::Bytes::from(first)]).chain(rest))
    }

    #[tokio::test]
    async fn empty_chunks_without_a_token_are_a_stall() {
        let mut s = endless(TEXT, EMPTY);
        assert_eq!(s.next().await, Some(Ok(StreamEvent::Text("hi ".into()))));
        let end = s.next().await;
        assert!(
            matches!(end, Some(Err(BackendError::Stalled { .. }))),
            "{end:?}"
        );
        assert_eq!(s.next().await, None);
    }

    #[tokio::test]
    async fn keep_alive_comments_alone_never_count_as_a_first_token() {
        let mut s = endless(": hello\n\n", ": keep-alive\n\n");
        let end = s.next().await;
        assert!(
            matches!(end, Some(Err(BackendError::FirstTokenTimeout { .. }))),
            "{end:?}"
        );
    }

    #[tokio::test]
    async fn invalid_utf8_is_reported_as_such() {
        let bad = bytes::Bytes::from_static(
            b"data: {\"choices\":[{\"delta\":{\"content\":\"\xff\"}}]}\n\n",
        );
        let mut s = stream_of(futures::stream::iter([bad]));
        let Some(Err(BackendError::Malformed { detail, .. })) = s.next().await else {
            panic!("not malformed");
        };
        assert!(detail.starts_with("invalid UTF-8"), "{detail}");
    }

    #[tokio::test]
    async fn an_endless_line_is_malformed_once_past_the_bound() {
        let block = bytes::Bytes::from(vec![b'x'; 64 * 1024]);
        let mut s = stream_of(futures::stream::repeat(block));
        let Some(Err(BackendError::Malformed { detail, .. })) = s.next().await else {
            panic!("not malformed");
        };
        assert!(detail.contains("larger than 1024 KiB"), "{detail}");
    }

    #[tokio::test]
    async fn a_stream_closed_right_after_done_ends_cleanly() {
        let body = format!("{TEXT}data: [DONE]");
        let mut s = stream_of(futures::stream::iter([bytes::Bytes::from(body)]));
        assert_eq!(s.next().await, Some(Ok(StreamEvent::Text("hi ".into()))));
        assert_eq!(s.next().await, None);
    }
}
