//! The continuation stitcher: a resumed stream's pieces (arbitrary UTF-8, cut where the input has a
//! NUL byte) against an arbitrary prefix (up to the first piece). Nothing may panic, and what passes
//! is always a suffix of what the backend sent: the filter only ever drops an echo from the start.

#![no_main]

use libfuzzer_sys::fuzz_target;
use llmkernel::llm::EchoFilter;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.split('\0');
    let prefix = parts.next().unwrap_or_default();
    let pieces: Vec<&str> = parts.collect();
    let mut filter = EchoFilter::new(prefix);
    let mut out: String = pieces.iter().map(|p| filter.push(p)).collect();
    out.push_str(&filter.finish());
    let sent: String = pieces.concat();
    assert!(sent.ends_with(&out), "{out:?} is not a suffix of {sent:?}");
    if let Some(new) = sent.strip_prefix(prefix)
        && !prefix.is_empty()
        && pieces.first().is_some_and(|p| p.len() >= prefix.len())
    {
        assert_eq!(out, new, "an echo in the first piece is dropped whole");
    }
});
