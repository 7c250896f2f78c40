//! The journal's on-disk framing: each record is `length (u32 LE) | crc32 (u32 LE) | payload`, the
//! payload encoded by the wire codec. [`read_frames`] stops at the first frame that is incomplete or
//! fails its checksum. [`scan`] tells the two reasons for such a frame apart: when no whole frame
//! follows it, it is the torn tail a crash leaves (safe to cut off); when valid frames follow, the file
//! was damaged in the middle, and [`scan`] reads on past the damage so that nothing after it is lost.

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

/// The record framed at `at`, and where the next frame starts; `None` when no whole, valid frame
/// starts there.
fn frame_at(bytes: &[u8], at: usize) -> Option<(Record, usize)> {
    let header = bytes.get(at..at.checked_add(FRAME_HEADER_BYTES)?)?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let start = at + FRAME_HEADER_BYTES;
    if len > MAX_FRAME_BYTES || bytes.len() - start < len {
        return None;
    }
    let payload = &bytes[start..start + len];
    if crc32fast::hash(payload) != crc {
        return None;
    }
    let record = decode::<Record>(payload).ok()?;
    Some((record, start + len))
}

/// The records of a journal file's bytes, and the length of the intact prefix. Bytes past it are a
/// torn tail or damage (see [`scan`]).
pub fn read_frames(bytes: &[u8]) -> (Vec<Record>, usize) {
    let mut records = Vec::new();
    let mut at = 0;
    while let Some((record, next)) = frame_at(bytes, at) {
        records.push(record);
        at = next;
    }
    (records, at)
}

/// A stretch of the file that holds no valid frame but is followed by valid ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Byte offset of the first bad byte.
    pub at: usize,
    /// Bytes skipped before the next valid frame.
    pub len: usize,
}

/// What [`scan`] found in a journal file.
#[derive(Debug, Default, PartialEq)]
pub struct Scan {
    /// Every record that could be read, in file order.
    pub records: Vec<Record>,
    /// Damaged stretches in the middle of the file (valid frames follow each).
    pub damage: Vec<Damage>,
    /// Length of the file up to the end of the last valid frame; past it is a torn tail.
    pub intact: usize,
}

/// Reads every valid frame of `bytes`, reading on past damage in the middle. A stretch counts as
/// damage only when a whole valid frame follows it; the bytes after the last valid frame are the torn
/// tail. Finding the next frame tries each offset; a random length field rarely fits the rest of
/// the file, so this is about linear in practice.
pub fn scan(bytes: &[u8]) -> Scan {
    let (mut records, mut at) = read_frames(bytes);
    let mut damage = Vec::new();
    loop {
        let resumed =
            (at + 1..bytes.len()).find_map(|from| frame_at(bytes, from).map(|f| (from, f)));
        let Some((from, (record, next))) = resumed else {
            break;
        };
        damage.push(Damage { at, len: from - at });
        records.push(record);
        let (more, end) = read_frames(&bytes[next..]);
        records.extend(more);
        at = next + end;
    }
    Scan {
        records,
        damage,
        intact: at,
    }
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
    fn damage_in_the_middle_is_skipped_and_what_follows_is_read() {
        let frames: Vec<Vec<u8>> = (1..=3).map(|n| frame(&sample(n)).unwrap()).collect();
        let mut bytes = frames.concat();
        let second = frames[0].len();
        bytes[second + FRAME_HEADER_BYTES] ^= 0xff; // the second record's payload
        let found = scan(&bytes);
        assert_eq!(found.records, vec![sample(1), sample(3)]);
        assert_eq!(
            found.damage,
            vec![Damage {
                at: second,
                len: frames[1].len()
            }]
        );
        assert_eq!(found.intact, bytes.len());
    }

    #[test]
    fn a_torn_tail_is_not_damage() {
        let mut bytes: Vec<u8> = (1..=2).flat_map(|n| frame(&sample(n)).unwrap()).collect();
        let whole = bytes.len();
        bytes.extend_from_slice(&[200, 0, 0, 0, 1, 2, 3]);
        bytes.extend_from_slice(&[0; 64]);
        let found = scan(&bytes);
        assert_eq!(found.records, vec![sample(1), sample(2)]);
        assert!(found.damage.is_empty());
        assert_eq!(found.intact, whole);
    }

    #[test]
    fn flipped_bit_fails_the_checksum() {
        let mut bytes = frame(&sample(1)).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(read_frames(&bytes), (vec![], 0));
    }
}
