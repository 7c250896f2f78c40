//! The wire decoder on arbitrary frame payloads, as a request (what the kernel reads) and as a reply
//! (what the shell reads). Decoding must never panic or allocate past the frame limit, and whatever
//! decodes must encode and decode back to the same message.

#![no_main]

use libfuzzer_sys::fuzz_target;
use llmkernel::proto::{Reply, Request, decode, encode};

fuzz_target!(|payload: &[u8]| {
    if let Ok(request) = decode::<Request>(payload) {
        let bytes = encode(&request).expect("a decoded request encodes");
        let again = decode::<Request>(&bytes).expect("an encoded request decodes");
        assert_eq!(again, request);
    }
    if let Ok(reply) = decode::<Reply>(payload) {
        let bytes = encode(&reply).expect("a decoded reply encodes");
        let again = decode::<Reply>(&bytes).expect("an encoded reply decodes");
        assert_eq!(again, reply);
    }
});
