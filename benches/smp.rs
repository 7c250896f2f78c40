//! Several backends benchmark (SMP), against fake servers:
//!
//! - `smp_throughput_ratio`: a batch of equal processes on two identical fake backends over the same
//!   batch on one, measured in the same run (target ≥ 1.9: the second server's slots are used as
//!   fully as the first's).
//! - `migration_added_ms`: a process stopped mid-answer and continued, once going back to its own
//!   slot (whose llama-server prompt cache still holds its conversation) and once migrating to the
//!   other backend because its slot was taken meanwhile; the figure is the extra wall time the
//!   migrated one takes from CONT to its end, reported with the prompt tokens the new backend
//!   re-processed (the fake charges `PREFILL` for each uncached one).
//!
//! No assertions: numbers to read. Run with `cargo bench --bench smp`.

#[allow(dead_code)] // the test harness's fake server; the benchmark uses part of it
#[path = "../tests/integration/support/fake_llm.rs"]
mod fake_llm;
#[allow(dead_code)] // each bench binary uses part of the support code
#[path = "support/mod.rs"]
mod support;

use fake_llm::{FakeConfig, FakeLlm, ServerKind};
use llmkernel::config::KernelConfig;
use llmkernel::config::backends::BackendSpec;
use llmkernel::proto::{
    Pid, ProcessState, ProcessType, Request, Response, Signal, SignalRequest, StatRequest,
    SubmitRequest,
};
use std::path::Path;
use std::time::{Duration, Instant};
use support::kernel::BenchKernel;
use support::summary::{self, Figure};

/// Slots per backend.
const SLOTS: u32 = 2;
/// Processes in the throughput batch: three waves on one backend's slots.
const BATCH: usize = 12;
const BATCH_TOKENS: usize = 80;
const TOKEN_DELAY: Duration = Duration::from_millis(5);
/// Words of the migrating process's prompt, and what each uncached one costs the fake.
const PROMPT_WORDS: usize = 1500;
const PREFILL: Duration = Duration::from_micros(300);
const MIGRATION_TOKENS: usize = 120;

fn spec(name: &str, url: &str) -> BackendSpec {
    BackendSpec {
        name: name.into(),
        url: url.into(),
        kind: Default::default(),
        slots: Some(SLOTS),
        models: vec!["m".into()],
        command: None,
        swap: false,
    }
}

fn kernel_over(urls: &[&str]) -> BenchKernel {
    let backends = urls
        .iter()
        .enumerate()
        .map(|(i, url)| spec(&format!("b{}", i + 1), url))
        .collect();
    BenchKernel::start(KernelConfig {
        backend_url: urls[0].to_string(),
        backends,
        quantum_tokens: 1000,
        ..KernelConfig::default()
    })
}

async fn submit(socket: &Path, prompt: String, max_tokens: u32) -> Pid {
    let mut c = llmkernel::shell::client::Client::connect(socket)
        .await
        .expect("connect");
    let submit = SubmitRequest {
        prompt,
        system: None,
        process_type: ProcessType::User,
        max_tokens: Some(max_tokens),
        nice: 0,
        attach: false,
    };
    match c.call(Request::Submit(submit)).await {
        Ok(Response::Submitted(s)) => s.pid,
        other => panic!("submit: {other:?}"),
    }
}

/// `(state, tokens used)` of `pid`.
async fn stat(socket: &Path, pid: Pid) -> (ProcessState, u32) {
    let mut c = llmkernel::shell::client::Client::connect(socket)
        .await
        .expect("connect");
    match c.call(Request::Stat(StatRequest { pid })).await {
        Ok(Response::Processes(list)) => {
            let p = &list.processes[0];
            (p.state, p.tokens_used)
        }
        other => panic!("stat: {other:?}"),
    }
}

async fn until(socket: &Path, pid: Pid, done: impl Fn(ProcessState, u32) -> bool) {
    loop {
        let (state, tokens) = stat(socket, pid).await;
        if done(state, tokens) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn signal(socket: &Path, pid: Pid, signal: Signal) {
    let mut c = llmkernel::shell::client::Client::connect(socket)
        .await
        .expect("connect");
    let _ = c.call(Request::Signal(SignalRequest { pid, signal })).await;
}

fn paced() -> FakeConfig {
    FakeConfig {
        tokens: 4000,
        delay: TOKEN_DELAY,
        model: "m".into(),
        ..Default::default()
    }
}

/// Wall time for the batch on the backends at `urls`.
async fn batch(urls: &[&str]) -> Duration {
    let k = kernel_over(urls);
    let start = Instant::now();
    let mut pids = Vec::new();
    for i in 0..BATCH {
        let prompt = format!("[tokens={BATCH_TOKENS}] job {i}");
        pids.push(submit(&k.socket, prompt, BATCH_TOKENS as u32).await);
    }
    for pid in pids {
        until(&k.socket, pid, |s, _| s == ProcessState::Zombie).await;
    }
    let took = start.elapsed();
    k.stop();
    took
}

/// From CONT to the end of a process stopped mid-answer; with `migrate`, its slot is taken while
/// it is stopped. Returns that time and the prompt tokens the second backend processed.
async fn resume(migrate: bool) -> (Duration, usize) {
    let llama = |_| FakeConfig {
        kind: ServerKind::LlamaCpp { slots: 1 },
        prefill: PREFILL,
        ..paced()
    };
    let a = FakeLlm::start(llama(())).await;
    let b = FakeLlm::start(llama(())).await;
    let k = BenchKernel::start(KernelConfig {
        backend_url: a.url.clone(),
        backends: vec![
            BackendSpec {
                slots: Some(1),
                ..spec("a", &a.url)
            },
            BackendSpec {
                slots: Some(1),
                ..spec("b", &b.url)
            },
        ],
        quantum_tokens: 1000,
        ..KernelConfig::default()
    });
    let words: Vec<String> = (0..PROMPT_WORDS).map(|i| format!("w{i}")).collect();
    let prompt = format!("[tokens={MIGRATION_TOKENS}] {}", words.join(" "));
    let pid = submit(&k.socket, prompt, MIGRATION_TOKENS as u32).await;
    until(&k.socket, pid, |_, t| t >= 30).await;
    signal(&k.socket, pid, Signal::Stop).await;
    until(&k.socket, pid, |s, _| s == ProcessState::Stopped).await;
    let filler = if migrate {
        let filler = submit(&k.socket, "[tokens=4000] filler".into(), 4000).await;
        until(&k.socket, filler, |s, t| {
            s == ProcessState::Running && t > 0
        })
        .await;
        Some(filler)
    } else {
        None
    };
    let prefilled_before = b.prefilled();
    let start = Instant::now();
    signal(&k.socket, pid, Signal::Cont).await;
    until(&k.socket, pid, |s, _| s == ProcessState::Zombie).await;
    let took = start.elapsed();
    if let Some(filler) = filler {
        signal(&k.socket, filler, Signal::Kill).await;
    }
    let reprocessed = b.prefilled() - prefilled_before;
    k.stop();
    (took, reprocessed)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let one = FakeLlm::start(paced()).await;
        let two = FakeLlm::start(paced()).await;
        let single = batch(&[&one.url]).await;
        let double = batch(&[&one.url, &two.url]).await;
        let ratio = single.as_secs_f64() / double.as_secs_f64();
        println!("batch of {BATCH}: one backend {single:?}, two backends {double:?}: {ratio:.2}x");
        let (stays, _) = resume(false).await;
        let (moves, reprocessed) = resume(true).await;
        let added_ms = moves.as_secs_f64() * 1000.0 - stays.as_secs_f64() * 1000.0;
        println!(
            "resume: on its own slot {stays:?}, migrated {moves:?} (+{added_ms:.0} ms, \
             {reprocessed} prompt tokens re-processed)"
        );
        summary::record(&[
            Figure::new(
                "smp_throughput_ratio",
                ratio,
                ">= 1.9",
                format!(
                    "{BATCH} processes of {BATCH_TOKENS} tokens, {SLOTS} slots a backend: one \
                     backend {single:?}, two {double:?}"
                ),
            ),
            Figure::new(
                "migration_added_ms",
                added_ms,
                "<= 1000",
                format!(
                    "a {PROMPT_WORDS}-word conversation resumed on another backend: \
                     {reprocessed} prompt tokens re-processed at {PREFILL:?} each; stays \
                     {stays:?}, migrates {moves:?}"
                ),
            ),
        ]);
    });
}
