//! The backend stream parser as the kernel runs it: arbitrary bytes arriving in chunks of arbitrary
//! size (the first input byte) go through the bounded SSE decoder, and each event's data through the
//! chat-chunk parser. Nothing may panic, the decoder never holds more than its bound, and once it
//! reports an error it keeps reporting it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use llmkernel::llm::event_stream::{EventDecoder, MAX_EVENT_BYTES};
use llmkernel::llm::parse_chunk;

fuzz_target!(|data: &[u8]| {
    let Some((&step, bytes)) = data.split_first() else {
        return;
    };
    let step = usize::from(step).max(1);
    let mut decoder = EventDecoder::new();
    let mut failed = None;
    for chunk in bytes.chunks(step) {
        match decoder.push(chunk) {
            Ok(()) => assert!(failed.is_none(), "an error is final"),
            Err(e) => failed = Some(e),
        }
        while let Some(event) = decoder.next_event() {
            assert!(event.len() <= MAX_EVENT_BYTES);
            let _ = parse_chunk(event.trim());
        }
    }
    if failed.is_none() {
        let _ = decoder.finish();
        while let Some(event) = decoder.next_event() {
            let _ = parse_chunk(event.trim());
        }
    }
});
