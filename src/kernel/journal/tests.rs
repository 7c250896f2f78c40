//! Journal tests: replay, torn tails, compaction, old and new formats.

use super::record::*;
use super::*;
use crate::proto::{ExitStatus, ProcessType};

/// A creation record for `pid` (the writer's tests use it too).
pub(crate) fn created(pid: u64) -> CreatedRecord {
    CreatedRecord {
        pid: Pid(pid),
        uid: 1000,
        process_type: ProcessType::User,
        system: None,
        prompt: format!("prompt {pid}"),
        allowance: 100,
        nice: 0,
        created_unix_ms: 1,
        enqueued_unix_ms: pid,
    }
}

fn output(pid: u64, offset: u64, text: &str, tokens: u32) -> Record {
    Record::Output(OutputRecord {
        pid: Pid(pid),
        offset,
        text: text.into(),
        tokens_used: tokens,
        prompt_tokens: 0,
    })
}

#[test]
fn replay_rebuilds_every_process_and_the_next_pid() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut j, r) = Journal::open(dir.path()).unwrap();
        assert!(r.processes.is_empty());
        for pid in 1..=3 {
            j.append(&Record::Created(created(pid))).unwrap();
        }
        j.append(&output(1, 0, "t0 ", 1)).unwrap();
        j.append(&output(1, 3, "t1 ", 2)).unwrap();
        j.append(&output(1, 99, "lost ", 3)).unwrap(); // offset mismatch: ignored
        j.append(&Record::Finished {
            pid: Pid(2),
            status: ExitStatus::Finished,
            note: None,
            exited_unix_ms: 5,
        })
        .unwrap();
        j.append(&Record::Reaped { pid: Pid(3) }).unwrap();
        j.append(&Record::Reniced {
            pid: Pid(1),
            nice: 7,
        })
        .unwrap();
    }
    let (_, r) = Journal::open(dir.path()).unwrap();
    assert_eq!(
        r.processes.keys().copied().collect::<Vec<_>>(),
        vec![Pid(1), Pid(2)]
    );
    let p1 = &r.processes[&Pid(1)];
    assert_eq!(
        (p1.output.as_str(), p1.tokens_used, p1.created.nice),
        ("t0 t1 ", 2, 7)
    );
    assert_eq!(r.processes[&Pid(2)].state, DurableState::Zombie);
    assert_eq!(r.next_pid, 4, "pid 3 is not reused");
}

#[test]
fn torn_tail_is_truncated_and_appending_continues() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut j, _) = Journal::open(dir.path()).unwrap();
        j.append(&Record::Created(created(1))).unwrap();
    }
    let path = dir.path().join(JOURNAL_FILE);
    let whole = std::fs::metadata(&path).unwrap().len();
    let mut half = file::frame(&Record::Created(created(2))).unwrap();
    half.truncate(half.len() / 2);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(&half)
        .unwrap();
    let (mut j, r) = Journal::open(dir.path()).unwrap();
    assert_eq!(r.truncated_bytes, half.len() as u64);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), whole);
    j.append(&Record::Created(created(2))).unwrap();
    drop(j);
    let (_, r) = Journal::open(dir.path()).unwrap();
    assert_eq!(r.processes.len(), 2);
}

#[test]
fn compaction_keeps_the_state_and_shrinks_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = Journal::open(dir.path()).unwrap();
    for pid in 1..=50 {
        j.append(&Record::Created(created(pid))).unwrap();
        j.append(&Record::Reaped { pid: Pid(pid) }).unwrap();
    }
    j.append(&Record::Created(created(51))).unwrap();
    let path = dir.path().join(JOURNAL_FILE);
    let before = std::fs::metadata(&path).unwrap().len();
    let image = ProcessImage::new(created(51));
    j.compact(&image_records(image), 52).unwrap();
    assert!(std::fs::metadata(&path).unwrap().len() < before);
    j.append(&output(51, 0, "t0 ", 1)).unwrap();
    drop(j);
    let (_, r) = Journal::open(dir.path()).unwrap();
    assert_eq!(r.processes.len(), 1);
    assert_eq!(r.processes[&Pid(51)].output, "t0 ");
    assert_eq!(r.next_pid, 52);
}

#[test]
fn leftover_of_an_interrupted_compaction_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut j, _) = Journal::open(dir.path()).unwrap();
        j.append(&Record::Created(created(1))).unwrap();
    }
    std::fs::write(
        dir.path().join(format!("{JOURNAL_FILE}.new")),
        b"half a compaction",
    )
    .unwrap();
    let (_, r) = Journal::open(dir.path()).unwrap();
    assert_eq!(r.processes.len(), 1);
    assert!(!dir.path().join(format!("{JOURNAL_FILE}.new")).exists());
}

#[test]
fn older_and_newer_formats_fail_with_a_clear_message() {
    for (version, words) in [(0, "cannot read"), (FORMAT_VERSION + 1, "newer llmkernel")] {
        let dir = tempfile::tempdir().unwrap();
        let header = Record::Header {
            magic: MAGIC.into(),
            format_version: version,
        };
        std::fs::write(dir.path().join(JOURNAL_FILE), file::frame(&header).unwrap()).unwrap();
        let err = Journal::open(dir.path())
            .err()
            .expect("refused")
            .to_string();
        assert!(
            err.contains(words) && err.contains(&version.to_string()),
            "{err}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(JOURNAL_FILE),
        file::frame(&Record::NextPid(3)).unwrap(),
    )
    .unwrap();
    assert!(matches!(
        Journal::open(dir.path()),
        Err(JournalError::NotAJournal { .. })
    ));
}

use crate::kernel::process::Ask;

fn asked() -> Ask {
    crate::kernel::process::Ask {
        messages: vec![crate::proto::ChatMessage {
            role: crate::proto::Role::Tool,
            content: "42".into(),
        }],
        model: Some("m".into()),
        params: Some(r#"{"temperature":0.1}"#.into()),
        origin: Some("http curl/8".into()),
        deadline: None,
    }
}

#[test]
fn a_request_beyond_a_prompt_survives_replay_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut j, _) = Journal::open(dir.path()).unwrap();
        j.append(&Record::Created(created(1))).unwrap();
        j.append(&Record::Asked {
            pid: Pid(1),
            ask: asked(),
        })
        .unwrap();
    }
    let (mut j, r) = Journal::open(dir.path()).unwrap();
    let image = r.processes[&Pid(1)].clone();
    assert_eq!(*image.ask, asked());
    j.compact(&image_records(image), 2).unwrap();
    drop(j);
    let (_, r) = Journal::open(dir.path()).unwrap();
    assert_eq!(*r.processes[&Pid(1)].ask, asked());
}

#[test]
fn a_version_1_journal_is_still_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = file::frame(&Record::Header {
        magic: MAGIC.into(),
        format_version: 1,
    })
    .unwrap();
    bytes.extend(file::frame(&Record::Created(created(4))).unwrap());
    std::fs::write(dir.path().join(JOURNAL_FILE), bytes).unwrap();
    let (_, r) = Journal::open(dir.path()).unwrap();
    assert_eq!(*r.processes[&Pid(4)].ask, Ask::default());
}

#[test]
fn a_pipe_link_survives_replay_and_compaction() {
    use super::record::LinkRecord;
    let link = LinkRecord {
        pid: Pid(2),
        ppid: Some(Pid(1)),
        pgid: Pid(1),
        piped: true,
        blocked: true,
    };
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut j, _) = Journal::open(dir.path()).unwrap();
        j.append(&Record::Created(created(1))).unwrap();
        j.append(&Record::Created(created(2))).unwrap();
        j.append(&Record::Linked(link.clone())).unwrap();
    }
    let (mut j, r) = Journal::open(dir.path()).unwrap();
    assert_eq!(r.processes[&Pid(1)].link, None);
    let image = r.processes[&Pid(2)].clone();
    assert_eq!(image.link.as_deref(), Some(&link));
    j.compact(&image_records(image), 3).unwrap();
    drop(j);
    let (_, r) = Journal::open(dir.path()).unwrap();
    assert_eq!(r.processes[&Pid(2)].link.as_deref(), Some(&link));
}
