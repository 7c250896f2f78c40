//! Durability benchmark: what the journal costs and how fast the kernel comes back.
//!
//! - Submit latency: a `Submit` (created, written and synced before the acknowledgement) against the
//!   bare protocol round trip (`Sched`, which touches no disk) on the same connection, same run.
//! - Group commit: durable submits a second with 64 concurrent submitters, over the rate of a plain
//!   loop of one append and one `fdatasync` on the same disk in the same run (target >= 10: the
//!   journal writer syncs once for every record that arrived meanwhile).
//! - Recovery: the time from `kernel::start` to ready with 10,000 processes in the state directory
//!   (target: serving again within 1 s), against starting on an empty directory.
//!
//! No assertions: numbers to read, added to `target/bench/summary.json` like every bench's. Run with
//! `cargo bench --bench durability` (or `scripts/bench durability`).

#[allow(dead_code)] // the shared bench support; this binary uses part of it
mod support;

use llmkernel::config::KernelConfig;
use llmkernel::kernel::journal::Journal;
use llmkernel::kernel::journal::file::frame;
use llmkernel::kernel::journal::record::{CreatedRecord, OutputRecord, Record};
use llmkernel::proto::{Pid, ProcessType, Request, Response, SchedRequest, SubmitRequest};
use llmkernel::shell::client::Client;
use std::path::Path;
use std::time::{Duration, Instant};
use support::stats::{percentile, us};
use support::summary::{self, Figure};
use tokio_util::sync::CancellationToken;

const SUBMITS: usize = 2000;
/// Concurrent submitters for the group-commit figure, and how long they submit.
const SUBMITTERS: usize = 64;
const GROUP_COMMIT_RUN: Duration = Duration::from_secs(3);
/// Appends in the plain append + `fdatasync` baseline loop.
const PLAIN_SYNCS: usize = 500;
const RECOVERY_PROCESSES: u64 = 10_000;

/// A backend that accepts connections and never answers: the first process holds the one slot, the
/// rest wait, so the benchmark measures the kernel and its disk, not generation.
async fn silent_backend() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    format!("http://{addr}/v1")
}

fn config(url: &str, dir: &Path) -> KernelConfig {
    KernelConfig {
        backend_url: url.to_string(),
        model: Some("bench".into()),
        state_dir: dir.join("state"),
        max_queue: 1_000_000,
        ..KernelConfig::default()
    }
}

async fn submit_latency(url: &str) -> (Duration, Duration, Duration, Duration) {
    let dir = tempfile::tempdir_in(bench_dir()).expect("tempdir");
    let socket = dir.path().join("k.sock");
    let listener = tokio::net::UnixListener::bind(&socket).expect("bind");
    let shutdown = CancellationToken::new();
    let started = llmkernel::kernel::start(config(url, dir.path()), listener, shutdown.clone())
        .await
        .expect("kernel");
    let task = tokio::spawn(started.serve());
    let mut client = Client::connect(&socket).await.expect("connect");
    let (mut bare, mut durable) = (Vec::new(), Vec::new());
    for i in 0..SUBMITS {
        let t = Instant::now();
        let reply = client
            .call(Request::Sched(SchedRequest { policy: None }))
            .await;
        bare.push(t.elapsed());
        assert!(matches!(reply, Ok(Response::Sched(_))));
        let t = Instant::now();
        let reply = client.call(submit_request(i)).await;
        durable.push(t.elapsed());
        assert!(matches!(reply, Ok(Response::Submitted(_))), "{reply:?}");
    }
    shutdown.cancel();
    let _ = task.await;
    (
        percentile(&mut bare, 0.5),
        percentile(&mut bare, 0.99),
        percentile(&mut durable, 0.5),
        percentile(&mut durable, 0.99),
    )
}

fn submit_request(i: usize) -> Request {
    Request::Submit(SubmitRequest {
        prompt: format!("benchmark prompt {i}"),
        system: None,
        process_type: ProcessType::User,
        max_tokens: Some(100),
        nice: 0,
        attach: false,
    })
}

/// Durable submits a second from [`SUBMITTERS`] clients at once, each submitting as fast as its
/// acknowledgements come back.
async fn concurrent_submit_rate(url: &str) -> f64 {
    let dir = tempfile::tempdir_in(bench_dir()).expect("tempdir");
    let socket = dir.path().join("k.sock");
    let listener = tokio::net::UnixListener::bind(&socket).expect("bind");
    let shutdown = CancellationToken::new();
    let started = llmkernel::kernel::start(config(url, dir.path()), listener, shutdown.clone())
        .await
        .expect("kernel");
    let task = tokio::spawn(started.serve());
    let start = Instant::now();
    let submitters: Vec<_> = (0..SUBMITTERS)
        .map(|n| {
            let socket = socket.clone();
            tokio::spawn(async move {
                let mut client = Client::connect(&socket).await.expect("connect");
                let mut done = 0usize;
                while start.elapsed() < GROUP_COMMIT_RUN {
                    let reply = client.call(submit_request(n * 1_000_000 + done)).await;
                    assert!(matches!(reply, Ok(Response::Submitted(_))), "{reply:?}");
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut total = 0;
    for s in submitters {
        total += s.await.expect("submitter");
    }
    let rate = total as f64 / start.elapsed().as_secs_f64();
    shutdown.cancel();
    let _ = task.await;
    rate
}

/// Appends a second, one `fdatasync` each, to a plain file on the same disk.
fn plain_sync_rate() -> f64 {
    use std::io::Write;
    let dir = tempfile::tempdir_in(bench_dir()).expect("tempdir");
    let mut file = std::fs::File::create(dir.path().join("plain.log")).expect("file");
    let record = [0x5au8; 96];
    let start = Instant::now();
    for _ in 0..PLAIN_SYNCS {
        file.write_all(&record).expect("write");
        file.sync_data().expect("fdatasync");
    }
    PLAIN_SYNCS as f64 / start.elapsed().as_secs_f64()
}

/// Where the state directories go: `target/bench`, on the disk the project is on (never a tmpfs).
fn bench_dir() -> std::path::PathBuf {
    let dir = summary::dir();
    std::fs::create_dir_all(&dir).expect("target/bench");
    dir
}

/// Writes a journal holding `n` processes (half with some output, a tenth finished).
fn write_state(dir: &Path, n: u64) {
    let (mut journal, _) = Journal::open(&dir.join("state")).expect("journal");
    let mut bytes = Vec::new();
    let mut put = |record: &Record| bytes.extend(frame(record).expect("frame"));
    for i in 1..=n {
        let created = CreatedRecord {
            pid: Pid(i),
            uid: 1000,
            process_type: ProcessType::User,
            system: Some("You are a helpful assistant.".into()),
            prompt: format!("Summarise document number {i} in three sentences."),
            allowance: 4000,
            nice: 0,
            created_unix_ms: 1,
            enqueued_unix_ms: i,
        };
        put(&Record::Created(created));
        if i % 2 == 0 {
            let text = "t0 t1 t2 t3 t4 t5 t6 t7 ".to_string();
            let output = OutputRecord {
                pid: Pid(i),
                offset: 0,
                text,
                tokens_used: 8,
                prompt_tokens: 20,
            };
            put(&Record::Output(output));
        }
    }
    put(&Record::NextPid(n + 1));
    journal.write_synced(&bytes).expect("write");
}

async fn time_to_ready(url: &str, processes: u64) -> Duration {
    let dir = tempfile::tempdir_in(bench_dir()).expect("tempdir");
    write_state(dir.path(), processes);
    let listener = tokio::net::UnixListener::bind(dir.path().join("k.sock")).expect("bind");
    let shutdown = CancellationToken::new();
    let t = Instant::now();
    let started = llmkernel::kernel::start(config(url, dir.path()), listener, shutdown.clone())
        .await
        .expect("kernel");
    let elapsed = t.elapsed();
    let waiting = started.kernel().status_line();
    assert!(
        waiting.contains(&format!("{processes} processes")),
        "{waiting}"
    );
    shutdown.cancel();
    let _ = started.serve().await;
    elapsed
}

#[tokio::main]
async fn main() {
    let url = silent_backend().await;
    let (bare50, bare99, sub50, sub99) = submit_latency(&url).await;
    let empty = time_to_ready(&url, 0).await;
    let full = time_to_ready(&url, RECOVERY_PROCESSES).await;
    let plain = plain_sync_rate();
    let grouped = concurrent_submit_rate(&url).await;
    let plain_after = plain_sync_rate();
    let plain = (plain + plain_after) / 2.0;
    println!("durability ({SUBMITS} submits; recovery of {RECOVERY_PROCESSES} processes)");
    let round_trips = format!(
        "{SUBMITS} submits, each created, written and fdatasynced before the acknowledgement, against the same \
         connection's Sched round trip: p50 {:.0} vs {:.0} us, p99 {:.0} vs {:.0} us",
        us(sub50),
        us(bare50),
        us(sub99),
        us(bare99)
    );
    let recovery = format!(
        "kernel::start to ready with {RECOVERY_PROCESSES} processes in the journal (half with output): {:.1} ms; \
         empty state directory: {:.1} ms",
        full.as_secs_f64() * 1e3,
        empty.as_secs_f64() * 1e3
    );
    let group_commit = format!(
        "{SUBMITTERS} concurrent submitters for {} s: {grouped:.0} durable submits/s through the kernel; a plain \
         loop of one append and one fdatasync on the same disk: {plain:.0}/s (mean of a run before and after)",
        GROUP_COMMIT_RUN.as_secs()
    );
    let figures = [
        Figure::new(
            "durable_submit_gain",
            grouped / plain,
            ">= 10",
            group_commit,
        ),
        Figure::new(
            "submit_durable_added_us_p50",
            us(sub50) - us(bare50),
            "-",
            round_trips.clone(),
        ),
        Figure::new(
            "submit_durable_added_us_p99",
            us(sub99) - us(bare99),
            "-",
            round_trips,
        ),
        Figure::new(
            "recovery_ms_10k",
            full.as_secs_f64() * 1e3,
            "<= 1000",
            recovery,
        ),
    ];
    for f in &figures {
        println!(
            "{:<32} {:>10.1}  (target {})  {}",
            f.key,
            f.value.unwrap_or(f64::NAN),
            f.target,
            f.note
        );
    }
    summary::record(&figures);
}
