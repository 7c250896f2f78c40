//! The journal reader on arbitrary file contents, as a crash or a damaged disk could leave them. It
//! must never panic; the intact prefix it reports must read back alone to the same records; and the
//! records it found, framed again, must read back whole. The bytes are tried as they are and with
//! every frame's checksum made right, so the fuzzer also reaches the record decoder behind the CRC.

#![no_main]

use libfuzzer_sys::fuzz_target;
use llmkernel::kernel::journal::file::{FRAME_HEADER_BYTES, frame, read_frames};

fn check(bytes: &[u8]) {
    let (records, intact) = read_frames(bytes);
    assert!(intact <= bytes.len());
    let (prefix_records, prefix_len) = read_frames(&bytes[..intact]);
    assert_eq!(prefix_len, intact);
    assert_eq!(prefix_records, records);
    let mut framed = Vec::new();
    for record in &records {
        framed.extend(frame(record).expect("a record read back frames again"));
    }
    let (again, len) = read_frames(&framed);
    assert_eq!(len, framed.len());
    assert_eq!(again, records);
}

/// `bytes` with the checksum of every complete frame set to match its payload.
fn with_valid_checksums(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let mut at = 0;
    while out.len() - at >= FRAME_HEADER_BYTES {
        let len = u32::from_le_bytes([out[at], out[at + 1], out[at + 2], out[at + 3]]) as usize;
        let start = at + FRAME_HEADER_BYTES;
        if out.len() - start < len {
            break;
        }
        let crc = crc32fast::hash(&out[start..start + len]);
        out[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
        at = start + len;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    check(data);
    check(&with_valid_checksums(data));
});
