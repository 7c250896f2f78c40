//! Server-sent events cut out of a backend's byte stream, with bounds. The decoder follows the
//! `text/event-stream` rules that chat-completion streams use (lines end in LF, CRLF or CR; a blank
//! line ends an event; `data:` lines join with newlines; `:` starts a comment; other fields are
//! ignored) and refuses what a sane server never sends: one line or one event larger than
//! [`MAX_EVENT_BYTES`], and bytes that are not UTF-8. Each byte is looked at once, so a huge line costs
//! time in proportion to its size, and memory up to the bound, never more.

use std::collections::VecDeque;

/// The largest line or event accepted: a chat-completion chunk is a few hundred bytes (a few KiB with
/// logprobs), so a megabyte is a broken or hostile server, not a big token.
pub const MAX_EVENT_BYTES: usize = 1 << 20;

/// Why the bytes are not an event stream.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("a line or event larger than {} KiB", MAX_EVENT_BYTES / 1024)]
    TooLarge,
    #[error("invalid UTF-8 (byte {byte:#04x} in line {line})")]
    InvalidUtf8 { line: u64, byte: u8 },
}

/// Turns chunks of bytes into the `data` of complete events.
#[derive(Debug, Default)]
pub struct EventDecoder {
    /// The current line, not yet ended.
    line: Vec<u8>,
    /// The previous byte ended a line with CR: an LF right after it belongs to that ending.
    after_cr: bool,
    /// The data of the event being read; `None` until a `data` field is seen.
    data: Option<String>,
    /// Complete events, oldest first.
    ready: VecDeque<String>,
    /// Lines ended so far (for error messages).
    lines: u64,
    /// An error was returned: everything after it is refused too.
    failed: Option<DecodeError>,
}

impl EventDecoder {
    pub fn new() -> EventDecoder {
        EventDecoder::default()
    }

    /// Takes the next bytes of the stream. Complete events are then available from
    /// [`EventDecoder::next_event`]; an error is final.
    pub fn push(&mut self, mut bytes: &[u8]) -> Result<(), DecodeError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        while !bytes.is_empty() {
            if self.after_cr && bytes[0] == b'\n' {
                bytes = &bytes[1..];
                self.after_cr = false;
                continue;
            }
            self.after_cr = false;
            let end = bytes.iter().position(|b| *b == b'\n' || *b == b'\r');
            let body = &bytes[..end.unwrap_or(bytes.len())];
            if self.line.len() + body.len() > MAX_EVENT_BYTES {
                return self.fail(DecodeError::TooLarge);
            }
            self.line.extend_from_slice(body);
            let Some(end) = end else { break };
            self.after_cr = bytes[end] == b'\r';
            bytes = &bytes[end + 1..];
            self.end_line()?;
        }
        Ok(())
    }

    /// The stream ended: a last line or event without its blank line still counts (servers that close
    /// right after `data: [DONE]` are common enough).
    pub fn finish(&mut self) -> Result<(), DecodeError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if !self.line.is_empty() {
            self.end_line()?;
        }
        if let Some(data) = self.data.take() {
            self.ready.push_back(data);
        }
        Ok(())
    }

    /// The data of the oldest complete event not yet taken.
    pub fn next_event(&mut self) -> Option<String> {
        self.ready.pop_front()
    }

    fn fail(&mut self, e: DecodeError) -> Result<(), DecodeError> {
        self.line.clear();
        self.data = None;
        self.failed = Some(e.clone());
        Err(e)
    }

    /// Interprets the line just ended.
    fn end_line(&mut self) -> Result<(), DecodeError> {
        self.lines += 1;
        let raw = std::mem::take(&mut self.line);
        if raw.is_empty() {
            if let Some(data) = self.data.take() {
                self.ready.push_back(data);
            }
            return Ok(());
        }
        let line = match String::from_utf8(raw) {
            Ok(line) => line,
            Err(e) => {
                let bytes = e.as_bytes();
                let byte = bytes[e.utf8_error().valid_up_to()];
                let line = self.lines;
                return self.fail(DecodeError::InvalidUtf8 { line, byte });
            }
        };
        if line.starts_with(':') {
            return Ok(()); // a comment (keep-alive)
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_str(), ""),
        };
        if field != "data" {
            return Ok(()); // `event`, `id`, `retry`: chat streams carry nothing we need there
        }
        let held = self.data.as_ref().map_or(0, |d| d.len() + 1);
        if held + value.len() > MAX_EVENT_BYTES {
            return self.fail(DecodeError::TooLarge);
        }
        match &mut self.data {
            Some(data) => {
                data.push('\n');
                data.push_str(value);
            }
            None => self.data = Some(value.to_string()),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(chunks: &[&[u8]]) -> Result<Vec<String>, DecodeError> {
        let mut d = EventDecoder::new();
        for c in chunks {
            d.push(c)?;
        }
        d.finish()?;
        Ok(std::iter::from_fn(|| d.next_event()).collect())
    }

    #[test]
    fn events_end_at_blank_lines_whatever_the_line_endings_and_chunking() {
        let want = vec!["a".to_string(), "b".into(), "c".into()];
        assert_eq!(
            events(&[b"data: a\n\ndata: b\r\n\r\ndata: c\r\r"]),
            Ok(want.clone())
        );
        let whole: &[u8] = b"data: a\r\n\r\ndata: b\n\ndata: c\n\n";
        let bytes: Vec<&[u8]> = whole.chunks(1).collect();
        assert_eq!(events(&bytes), Ok(want));
    }

    #[test]
    fn comments_and_other_fields_are_skipped_and_data_lines_join() {
        let got = events(&[b": keep-alive\n\nevent: x\nid: 3\ndata: one\ndata:two\ndata\n\n"]);
        assert_eq!(got, Ok(vec!["one\ntwo\n".to_string()]));
        assert_eq!(events(&[b": ping\n\n: ping\n\n"]), Ok(vec![]));
    }

    #[test]
    fn a_last_event_without_its_blank_line_still_counts() {
        assert_eq!(events(&[b"data: [DONE]"]), Ok(vec!["[DONE]".to_string()]));
    }

    #[test]
    fn a_line_larger_than_the_bound_is_refused_without_growing_past_it() {
        let mut d = EventDecoder::new();
        let block = vec![b'x'; 64 * 1024];
        let mut result = Ok(());
        for _ in 0..32 {
            result = d.push(&block);
            if result.is_err() {
                break;
            }
            assert!(d.line.len() <= MAX_EVENT_BYTES);
        }
        assert_eq!(result, Err(DecodeError::TooLarge));
        assert_eq!(
            d.push(b"\n\n"),
            Err(DecodeError::TooLarge),
            "the error is final"
        );
    }

    #[test]
    fn an_event_of_many_small_lines_is_bounded_too() {
        let mut d = EventDecoder::new();
        let line = format!("data: {}\n", "y".repeat(1000));
        let mut result = Ok(());
        for _ in 0..2000 {
            result = d.push(line.as_bytes());
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(DecodeError::TooLarge));
    }

    #[test]
    fn invalid_utf8_is_named_with_its_byte_and_line() {
        let got = events(&[b"data: ok\n\ndata: bad \xff here\n\n"]);
        assert_eq!(
            got,
            Err(DecodeError::InvalidUtf8 {
                line: 3,
                byte: 0xff
            })
        );
        assert_eq!(
            got.unwrap_err().to_string(),
            "invalid UTF-8 (byte 0xff in line 3)"
        );
    }

    #[test]
    fn utf8_split_across_chunks_is_fine() {
        let text = "data: é\n\n".as_bytes();
        let (a, b) = text.split_at(7);
        assert_eq!(events(&[a, b]), Ok(vec!["é".to_string()]));
    }
}
