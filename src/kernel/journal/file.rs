//! The journal's on-disk framing: each record is `length (u32 LE) | crc32 (u32 LE) | payload`, the
//! payload encoded by the wire codec. Reading stops at the first frame that is incomplete or fails its
//! checksum: that is the torn tail a crash leaves, and everything before it is intact.

use super::record::Record;
use crate::proto::{MAX_FRAME_BYTES, decode, encode};

/// Bytes of a frame's header.
pub const FRAME_HEADER_BYTES: usize = 8;

/// Encodes one record as a frame.
pub fn frame(record: &Record) -> Result<Vec<u8>, String> {
    let payload = encode(record).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(FRAME_HEADER_BYTES + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// The records of a journal file's bytes, and the length of the intact prefix. Bytes past it are a
/// torn tail (or damage) and must be truncated before appending.
pub fn read_frames(bytes: &[u8]) -> (Vec<Record>, usize) {
    let mut records = Vec::new();
    let mut at = 0;
    while bytes.len() - at >= FRAME_HEADER_BYTES {
        let len =
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        let crc = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]]);
        let start = at + FRAME_HEADER_BYTES;
        if len > MAX_FRAME_BYTES || bytes.len() - start < len {
            break;
        }
        let payload = &bytes[start..start + len];
        if crc32fast::hash(payload) != crc {
            break;
        }
        match decode::<Record>(payload) {
            Ok(record) => records.push(record),
            Err(_) => break,
        }
        at = start + len;
    }
    (records, at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Pid;

    fn sample(n: u64) -> Record {
        Record::Reaped { pid: Pid(n) }
    }

    #[test]
    fn frames_read_back_in_order() {
        let bytes: Vec<u8> = (1..=3).flat_map(|n| frame(&sample(n)).unwrap()).collect();
        let (records, intact) = read_frames(&bytes);
        assert_eq!(records, vec![sample(1), sample(2), sample(3)]);
        assert_eq!(intact, bytes.len());
    }

    #[test]
    fn torn_tail_is_cut_at_every_possible_length() {
        let whole: Vec<u8> = (1..=2).flat_map(|n| frame(&sample(n)).unwrap()).collect();
        let first = frame(&sample(1)).unwrap().len();
        for cut in first..whole.len() {
            let (records, intact) = read_frames(&whole[..cut]);
            assert_eq!(records, vec![sample(1)], "cut at {cut}");
            assert_eq!(intact, first);
        }
    }

    #[test]
    fn flipped_bit_fails_the_checksum() {
        let mut bytes = frame(&sample(1)).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(read_frames(&bytes), (vec![], 0));
    }
}
