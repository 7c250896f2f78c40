//! Journal replay on arbitrary file contents: the reader finds what records it can (reading past
//! damage in the middle), and replay rebuilds a table from them. It must never panic; it must be
//! deterministic; every process it brings back has a pid below the next pid it hands out; and the
//! records of every frame it read, framed again, scan back to the same records.

#![no_main]

use libfuzzer_sys::fuzz_target;
use llmkernel::kernel::journal::file::{frame, scan};
use llmkernel::kernel::journal::replay::replay;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let found = scan(data);
    assert!(found.intact <= data.len());
    let path = Path::new("fuzz-journal");
    let first = replay(path, &found.records);
    let again = replay(path, &found.records);
    assert_eq!(first.is_ok(), again.is_ok());
    if let (Ok(a), Ok(b)) = (&first, &again) {
        assert_eq!(a.processes, b.processes);
        assert_eq!(a.next_pid, b.next_pid);
        for pid in a.processes.keys() {
            assert!(pid.0 < a.next_pid, "pid {pid} is not below next pid {}", a.next_pid);
        }
    }
    let mut framed = Vec::new();
    for record in &found.records {
        framed.extend(frame(record).expect("a record read back frames again"));
    }
    let back = scan(&framed);
    assert_eq!(back.records, found.records);
    assert!(back.damage.is_empty());
});
