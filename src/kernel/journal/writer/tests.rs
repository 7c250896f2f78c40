//! The writer: acknowledgements only for what is on disk (checked against a simulated loss of every
//! unsynced write), group commit, and a damaged journal that fails fast until a rewrite.

use super::*;
use crate::kernel::journal::record::{ProcessImage, image_records};
use crate::kernel::journal::{JOURNAL_FILE, Journal};
use std::sync::Mutex;

/// The creation of `pid`, as a record to append.
fn created(pid: u64) -> Record {
    Record::Created(crate::kernel::journal::tests::created(pid))
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn an_acknowledged_record_survives_the_loss_of_every_unsynced_write() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(dir.path()).unwrap();
    let mut handle = JournalHandle::spawn(journal, u64::MAX).unwrap();
    // (pid, bytes on disk when its acknowledgement ran), in acknowledgement order.
    let acked = Arc::new(Mutex::new(Vec::new()));
    for pid in 1..=300 {
        let (acked, shared) = (Arc::clone(&acked), Arc::clone(&handle.shared));
        handle.append(
            created(pid),
            Some(Box::new(move |result: Result<(), WriteError>| {
                assert!(result.is_ok());
                let on_disk = shared.synced_len.load(Ordering::Acquire);
                acked.lock().unwrap().push((pid, on_disk));
            })),
        );
    }
    handle.close();
    let bytes = std::fs::read(dir.path().join(JOURNAL_FILE)).unwrap();
    let acked = acked.lock().unwrap().clone();
    assert_eq!(acked.len(), 300);
    // A crash after the k-th acknowledgement keeps the synced prefix and loses or garbles the rest.
    for k in [1, 2, 17, 150, 299, 300] {
        let on_disk = acked[..k].iter().map(|(_, len)| *len).max().unwrap() as usize;
        let crashed = tempfile::tempdir().unwrap();
        let mut image = bytes[..on_disk].to_vec();
        image.extend(std::iter::repeat_n(0xa5, 13)); // a torn, unsynced write
        std::fs::write(crashed.path().join(JOURNAL_FILE), &image).unwrap();
        let (_, recovered) = Journal::open(crashed.path()).unwrap();
        for (pid, _) in &acked[..k] {
            assert!(
                recovered.processes.contains_key(&Pid(*pid)),
                "pid {pid} was acknowledged before crash point {k} but is lost"
            );
        }
    }
}

#[test]
fn records_that_arrive_together_share_one_sync() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(dir.path()).unwrap();
    let mut handle = JournalHandle::spawn(journal, u64::MAX).unwrap();
    let before = handle.batches();
    let (ack, resolve) = Ack::pending();
    for pid in 1..1000 {
        handle.append(created(pid), None);
    }
    handle.append(created(1000), Some(Box::new(resolve)));
    block_on(ack.durable()).unwrap();
    let batches = handle.batches() - before;
    assert!(batches < 1000, "1000 records took {batches} syncs");
    handle.close();
    let (_, recovered) = Journal::open(dir.path()).unwrap();
    assert_eq!(recovered.processes.len(), 1000);
}

#[test]
fn a_damaged_journal_fails_fast_and_a_rewrite_heals_it_without_the_failed_creation() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = Journal::open(dir.path()).unwrap();
    journal.append(&created(1)).unwrap();
    // Writes to a read-only descriptor fail, as they would on a full disk.
    journal.file = Some(std::fs::File::open(dir.path().join(JOURNAL_FILE)).unwrap());
    let mut handle = JournalHandle::spawn(journal, u64::MAX).unwrap();
    let append = |handle: &mut JournalHandle, record| {
        let (ack, resolve) = Ack::pending();
        handle.append(record, Some(Box::new(resolve)));
        block_on(ack.durable())
    };
    assert!(append(&mut handle, created(2)).is_err(), "the write fails");
    assert!(handle.is_damaged());
    let err = append(&mut handle, created(3)).unwrap_err();
    assert!(err.contains("could not be written earlier"), "{err}");
    assert!(handle.wants_compaction(0), "a rewrite is tried");
    assert!(
        !handle.wants_compaction(0),
        "but not again on the next record"
    );
    // The state's snapshot holds all three; the two whose creation failed are left out.
    let images: Vec<Record> = [1, 2, 3]
        .into_iter()
        .flat_map(|pid| {
            image_records(ProcessImage::new(crate::kernel::journal::tests::created(
                pid,
            )))
        })
        .collect();
    handle.compact(images, 4);
    assert!(append(&mut handle, created(4)).is_ok(), "healed");
    assert!(!handle.is_damaged());
    handle.close();
    let (_, recovered) = Journal::open(dir.path()).unwrap();
    let pids: Vec<u64> = recovered.processes.keys().map(|p| p.0).collect();
    assert_eq!(pids, [1, 4]);
    assert_eq!(recovered.next_pid, 5);
}
