//! Resuming a generation after a context switch. The kernel sends the conversation with the partial
//! output as a trailing assistant message. Some servers (llama.cpp's llama-server among them) stream
//! that prefix back before the new text; others send only the new text. [`EchoFilter`] passes on only
//! what is new in both cases, so the process's output reads as one unbroken answer.

/// Drops a backend's echo of the assistant prefix from the start of a resumed stream.
#[derive(Debug)]
pub struct EchoFilter {
    prefix: String,
    /// Bytes of `prefix` matched so far while it still looks like an echo.
    matched: usize,
    /// The start of the stream has been decided: everything from now on is new text.
    decided: bool,
}

impl EchoFilter {
    /// A filter for a stream that continues `prefix` (empty for a fresh generation).
    pub fn new(prefix: &str) -> EchoFilter {
        EchoFilter {
            prefix: prefix.to_string(),
            matched: 0,
            decided: prefix.is_empty(),
        }
    }

    /// Takes one streamed piece and returns the new text in it (possibly empty while undecided).
    pub fn push(&mut self, piece: &str) -> String {
        if self.decided {
            return piece.to_string();
        }
        let rest = &self.prefix[self.matched..];
        if rest.starts_with(piece) {
            self.matched += piece.len();
            if self.matched == self.prefix.len() {
                self.decided = true;
            }
            return String::new();
        }
        self.decided = true;
        if let Some(new) = piece.strip_prefix(rest) {
            return new.to_string();
        }
        // Not an echo after all: what was held back is real new text.
        let mut out = self.prefix[..self.matched].to_string();
        out.push_str(piece);
        out
    }

    /// Ends the stream: returns text held back that turned out not to be an echo.
    pub fn finish(&mut self) -> String {
        if self.decided || self.matched == 0 {
            return String::new();
        }
        self.decided = true;
        self.prefix[..self.matched].to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(prefix: &str, pieces: &[&str]) -> String {
        let mut f = EchoFilter::new(prefix);
        let mut out: String = pieces.iter().map(|p| f.push(p)).collect();
        out.push_str(&f.finish());
        out
    }

    #[test]
    fn echoed_prefix_in_the_first_chunk_is_dropped() {
        assert_eq!(run("Hello wor", &["Hello world", "!"]), "ld!");
    }

    #[test]
    fn echoed_prefix_over_several_chunks_is_dropped() {
        assert_eq!(run("Hello wor", &["Hel", "lo ", "wor", "ld"]), "ld");
    }

    #[test]
    fn new_text_only_passes_through() {
        assert_eq!(run("Hello wor", &["ld", "!"]), "ld!");
    }

    #[test]
    fn new_text_that_starts_like_the_prefix_is_kept() {
        assert_eq!(run("Hello wor", &["Hel", "p"]), "Help");
        assert_eq!(run("Hello wor", &["Hel"]), "Hel");
    }

    #[test]
    fn fresh_generation_passes_everything() {
        assert_eq!(run("", &["a", "b"]), "ab");
    }
}
