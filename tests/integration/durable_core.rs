//! The durable core's promises, each from a reproduced failure: a compaction never drops the record
//! that triggered it, one kernel per state directory, no record larger than a frame (and a bounded
//! output per process), damage in the middle of the journal kept as evidence and read past, and
//! kills, STOPs and renices acknowledged only once durable.

use crate::support::fake_llm::{FakeConfig, FakeLlm};
use crate::support::{TestKernel, config_file, job_pid, ps_row};
use std::time::Duration;

/// The pids `ps -a` lists.
fn pids(ps: &str) -> Vec<u64> {
    ps.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

#[tokio::test]
async fn a_creation_that_triggers_compaction_survives_a_crash_and_keeps_its_pid() {
    let fake = FakeLlm::start(FakeConfig {
        tokens: 10_000,
        delay: Duration::from_millis(20),
        ..Default::default()
    })
    .await;
    // Every record asks for a compaction; the only slot is busy, so the second process waits.
    let (dir, config) = config_file("cpus = 1\njournal_compact_records = 1\n");
    let args = ["--config", config.as_str()];
    let k = TestKernel::start_in(dir, &fake.url, &args).await;
    let first = job_pid(&k.sh("query \"running on the only slot\" &").await.stdout);
    k.eventually("ps", "the first to run", |ps| {
        ps_row(ps, first).is_some_and(|r| r[5] == "R")
    })
    .await;
    let second = job_pid(&k.sh("query \"acknowledged while waiting\" &").await.stdout);
    let dir = k.crash().await;
    let k = TestKernel::start_in(dir, &fake.url, &args).await;
    let listed = pids(&k.sh("ps -a").await.stdout);
    assert_eq!(listed, [first, second], "both acknowledged processes");
    let third = job_pid(&k.sh("query \"after the restart\" &").await.stdout);
    assert!(third > second, "pid {third} handed out again");
}

#[tokio::test]
async fn a_second_kernel_on_the_same_state_directory_exits_at_once_naming_the_first() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let k = TestKernel::start(&fake.url, &[]).await;
    crate::durability::assert_second_kernel_is_refused(&k, &fake.url).await;
    assert_eq!(k.sh("ps").await.status, 0, "the first one serves on");
}

#[tokio::test]
async fn output_beyond_a_frame_is_journaled_in_chunks_and_capped_by_the_output_limit() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    // 64 KiB tokens: 6 MiB of output in under a hundred tokens; the limit stops it at 5 MiB.
    let (dir, config) = config_file(
        "journal_compact_records = 1\nquantum = 4\n[limits]\nmax_output_bytes = 5242880\n",
    );
    let args = ["--config", config.as_str()];
    let k = TestKernel::start_in(dir, &fake.url, &args).await;
    let big = job_pid(
        &k.sh("query \"[tokens=96][pad=65536] a long one\" &")
            .await
            .stdout,
    );
    let listing = k
        .eventually_wide("ps -l", "the long one to end", |ps| {
            ps_row(ps, big).is_some_and(|r| r[5] == "Z")
        })
        .await;
    assert!(listing.contains("output limit"), "{listing}");
    // Compaction (every record) kept working: a later process is accepted and recorded.
    let after = k.sh("query --max-tokens 2 \"after the big one\"").await;
    assert_eq!(after.status, 0, "{after:?}");
    let dir = k.crash().await;
    let (_, recovered) =
        llmkernel::kernel::journal::Journal::open(&dir.path().join("state")).expect("journal");
    let image = &recovered.processes[&llmkernel::proto::Pid(big)];
    assert!(
        image.output.len() >= 5 * 1024 * 1024,
        "{} bytes of output came back",
        image.output.len()
    );
    assert!(
        image
            .note
            .as_deref()
            .is_some_and(|n| n.contains("output limit"))
    );
}

#[tokio::test]
async fn an_interrupt_message_obeys_the_prompt_limit() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let (dir, config) = config_file("[limits]\nmax_prompt_bytes = 1000\n");
    let k = TestKernel::start_in(dir, &fake.url, &["--config", config.as_str()]).await;
    let long = "x".repeat(2000);
    let run = k.sh(&format!("interrupt system {long}")).await;
    assert_ne!(run.status, 0);
    assert!(run.stderr.contains("over the kernel's limit"), "{run:?}");
}

#[tokio::test]
async fn damage_in_the_middle_of_the_journal_is_kept_and_read_past() {
    let fake = FakeLlm::start(FakeConfig {
        tokens: 2,
        ..Default::default()
    })
    .await;
    let k = TestKernel::start(&fake.url, &[]).await;
    let mut acked = Vec::new();
    for i in 0..6 {
        acked.push(job_pid(&k.sh(&format!("query \"job {i}\" &")).await.stdout));
    }
    let dir = k.crash().await;
    let state = dir.path().join("state");
    let journal = state.join("journal.log");
    let mut bytes = std::fs::read(&journal).expect("journal");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&journal, &bytes).expect("damage");
    let k = TestKernel::start_in(dir, &fake.url, &[]).await;
    let kept: Vec<_> = std::fs::read_dir(&state)
        .expect("state dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("damaged"))
        .collect();
    assert_eq!(kept.len(), 1, "a copy of the damaged journal is kept");
    assert_eq!(std::fs::read(kept[0].path()).expect("copy"), bytes);
    let listed = pids(&k.sh("ps -a").await.stdout);
    assert!(
        listed.contains(acked.last().expect("a pid")),
        "the records after the damage are read: {listed:?} of {acked:?}"
    );
}
