//! Scheduling benchmark: a mixed load of short interactive (USER) queries and long background
//! (HOUSEKEEPING) generations on a few slots, run against the fake server under each policy and under
//! plain FIFO (round robin with a quantum longer than any answer, which is how llama-server itself
//! schedules), all in the same run. It reports the interactive class's time to first token (p50, p99,
//! and p50 as a fraction of FIFO's), and what a context switch costs: prompt tokens re-processed and
//! wall time added per switch, without and with llama-server's slot pinning and prompt cache.
//! `switches_per_interactive` in the summary is the runs the default policy cut (each a cancelled
//! request) per interactive query of the mixed load.
//! No assertions: numbers to read. Run with `cargo bench --bench scheduling`.

#[allow(dead_code)] // the test harness's fake server; the benchmark uses part of it
#[path = "../tests/integration/support/fake_llm.rs"]
mod fake_llm;
#[allow(dead_code)] // each bench binary uses part of the support code
#[path = "support/mod.rs"]
mod support;

use fake_llm::{FakeConfig, FakeLlm, ServerKind};
use llmkernel::config::{KernelConfig, PolicyKind};
use llmkernel::proto::{ProcessType, Request, Response, SchedRequest, SubmitRequest};
use llmkernel::shell::client::Client;
use std::path::Path;
use std::time::{Duration, Instant};
use support::kernel::BenchKernel;
use support::summary::{self, Figure};

const CPUS: u32 = 2;
const QUANTUM_TOKENS: u32 = 16;
const TOKEN_DELAY: Duration = Duration::from_millis(3);
const BACKGROUND: usize = 6;
const BACKGROUND_TOKENS: usize = 300;
const INTERACTIVE: usize = 40;
const INTERACTIVE_TOKENS: usize = 12;
const INTERACTIVE_GAP: Duration = Duration::from_millis(60);

/// Runs one process to its end; returns (time to first token, time to the end).
async fn run_query(
    socket: &Path,
    t: ProcessType,
    prompt: String,
    system: Option<String>,
) -> (Duration, Duration) {
    let start = Instant::now();
    let mut c = Client::connect(socket).await.expect("connect");
    let submit = SubmitRequest {
        prompt,
        system,
        process_type: t,
        max_tokens: None,
        nice: 0,
        attach: true,
    };
    c.send(Request::Submit(submit)).await.expect("submit");
    let mut first = None;
    loop {
        match c.recv().await {
            Ok(Response::Output(chunk)) if !chunk.text.is_empty() => {
                first.get_or_insert_with(|| start.elapsed());
            }
            Ok(Response::Exited(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    (first.unwrap_or_else(|| start.elapsed()), start.elapsed())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

struct MixedResult {
    p50: Duration,
    p99: Duration,
    switches: u64,
    /// Runs the scheduler cut to hand a slot over (cancelled requests).
    cut: u64,
    prefilled: usize,
}

/// Runs the kernel's scheduler cut to hand a slot over, from `sched`.
async fn cut_runs(k: &BenchKernel) -> u64 {
    let mut c = k.connect().await;
    match c
        .call(Request::SchedInfo(SchedRequest { policy: None }))
        .await
    {
        Ok(Response::SchedInfo(info)) => info.switches,
        other => panic!("sched: {other:?}"),
    }
}

/// The mixed load under one policy.
async fn mixed(policy: PolicyKind, quantum: u32) -> MixedResult {
    let fake = FakeLlm::start(FakeConfig {
        delay: TOKEN_DELAY,
        ..FakeConfig::default()
    })
    .await;
    let k = BenchKernel::for_backend(&fake.url, CPUS, quantum, policy);
    let mut background = Vec::new();
    for n in 0..BACKGROUND {
        let prompt = format!("[tokens={BACKGROUND_TOKENS}] background {n}");
        let socket = k.socket.clone();
        background.push(tokio::spawn(async move {
            run_query(&socket, ProcessType::Housekeeping, prompt, None).await
        }));
    }
    let mut interactive = Vec::new();
    for n in 0..INTERACTIVE {
        tokio::time::sleep(INTERACTIVE_GAP).await;
        let prompt = format!("[tokens={INTERACTIVE_TOKENS}] question {n}");
        let socket = k.socket.clone();
        interactive.push(tokio::spawn(async move {
            run_query(&socket, ProcessType::User, prompt, None).await
        }));
    }
    let mut ttft = Vec::new();
    for task in interactive {
        ttft.push(task.await.expect("interactive query").0);
    }
    for task in background {
        task.await.expect("background query");
    }
    ttft.sort();
    let switches = k.context_switches().await;
    let cut = cut_runs(&k).await;
    k.stop();
    MixedResult {
        p50: percentile(&ttft, 0.5),
        p99: percentile(&ttft, 0.99),
        switches,
        cut,
        prefilled: fake.prefilled(),
    }
}

struct SwitchCost {
    switches: u64,
    added_ms_per_switch: f64,
    reprocessed_per_switch: f64,
}

/// Two long answers on one slot with a long system prompt: round robin by quantum against FIFO, on a
/// server that charges time per prompt token it has to process.
async fn switch_cost(kind: ServerKind) -> SwitchCost {
    let system = "background context ".repeat(300);
    let mut wall = Vec::new();
    let mut results = Vec::new();
    for quantum in [1_000_000, QUANTUM_TOKENS] {
        let fake = FakeLlm::start(FakeConfig {
            kind: kind.clone(),
            delay: Duration::from_millis(2),
            prefill: Duration::from_micros(50),
            ..FakeConfig::default()
        })
        .await;
        let k = BenchKernel::for_backend(&fake.url, 1, quantum, PolicyKind::RoundRobin);
        let start = Instant::now();
        let runs: Vec<_> = (0..2)
            .map(|n| {
                let socket = k.socket.clone();
                let system = Some(system.clone());
                tokio::spawn(async move {
                    run_query(
                        &socket,
                        ProcessType::User,
                        format!("[tokens=320] long {n}"),
                        system,
                    )
                    .await
                })
            })
            .collect();
        for r in runs {
            r.await.expect("query");
        }
        wall.push(start.elapsed());
        results.push((k.context_switches().await, fake.prefilled()));
        k.stop();
    }
    let (switches, prefilled) = results[1];
    let per = |x: f64| {
        if switches == 0 {
            0.0
        } else {
            x / switches as f64
        }
    };
    SwitchCost {
        switches,
        added_ms_per_switch: per((wall[1].as_secs_f64() - wall[0].as_secs_f64()) * 1000.0),
        reprocessed_per_switch: per(prefilled as f64 - results[0].1 as f64),
    }
}

/// Microseconds per operation with `n` waiting, the median of a few repetitions: (a pick alone, a
/// pick with the charge and re-enqueue of a quantum boundary). Picks are timed in batches of
/// [`PICK_BATCH`], each batch's processes re-enqueued untimed, so the queue stays within a batch of `n`.
fn pick_us(policy: PolicyKind, n: u64) -> (f64, f64) {
    let mut picks = Vec::new();
    let mut cycles = Vec::new();
    for _ in 0..PICK_REPETITIONS {
        let (pick, cycle) = pick_us_once(policy, n);
        picks.push(pick);
        cycles.push(cycle);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    (median(&mut picks), median(&mut cycles))
}

const PICK_BATCH: u64 = 100;
const PICK_ROUNDS: u64 = 20_000;
const PICK_REPETITIONS: usize = 5;

fn pick_us_once(policy: PolicyKind, n: u64) -> (f64, f64) {
    use llmkernel::kernel::scheduler::{Candidate, Scheduler};
    use llmkernel::proto::Pid;
    let config = KernelConfig::default();
    let mut s = Scheduler::new(llmkernel::kernel::make_policy(policy, &config));
    let candidate = |i: u64, at: u64| Candidate {
        pid: Pid(i),
        uid: (i % 7) as u32,
        base_priority: (i % 5 + 1) as u8,
        nice: (i % 40) as i8 - 20,
        enqueued_ms: at,
        tokens_used: 0,
        interactive: i % 5 >= 3,
        deadline_ms: None,
    };
    for i in 0..n {
        s.enqueue(&candidate(i, i));
    }
    let mut now = n;
    let mut picked = Vec::with_capacity(PICK_BATCH as usize);
    let mut pick_time = std::time::Duration::ZERO;
    for _ in 0..PICK_ROUNDS / PICK_BATCH {
        let start = Instant::now();
        for _ in 0..PICK_BATCH {
            picked.extend(std::hint::black_box(s.pick()));
        }
        pick_time += start.elapsed();
        for pid in picked.drain(..) {
            now += 1;
            s.enqueue(&candidate(pid.0, now));
        }
    }
    let pick = pick_time.as_secs_f64() * 1e6 / PICK_ROUNDS as f64;
    let start = Instant::now();
    for _ in 0..PICK_ROUNDS {
        if let Some(pid) = s.pick() {
            now += 1;
            s.charge(&candidate(pid.0, 0), 4, now);
            s.enqueue(&candidate(pid.0, now));
        }
    }
    let cycle = start.elapsed().as_secs_f64() * 1e6 / PICK_ROUNDS as f64;
    (pick, cycle)
}

/// One policy's costs in microseconds, (pick, quantum-boundary cycle), with 1k and 100k waiting.
struct Decision {
    policy: PolicyKind,
    small: (f64, f64),
    large: (f64, f64),
}

/// The summary's scheduler figures: the slowest policy's pick of the next process with 100,000
/// waiting, and the largest growth of a pick from 1,000 to 100,000 waiting; the note adds the whole
/// quantum-boundary cycle (pick, charge, re-enqueue).
fn record_decisions(decisions: &[Decision]) {
    let worst = |f: fn(&Decision) -> f64| decisions.iter().map(f).fold(0.0, f64::max);
    let show = |f: fn(&Decision) -> (f64, f64)| {
        let all: Vec<String> = decisions
            .iter()
            .map(|d| format!("{} {:.2}/{:.2}", d.policy, f(d).0, f(d).1))
            .collect();
        all.join(", ")
    };
    let how = format!(
        "pick of the next process, slowest policy; us with 1k/100k waiting: {}; a whole quantum-boundary cycle (pick, charge, re-enqueue): {}",
        show(|d| (d.small.0, d.large.0)),
        show(|d| (d.small.1, d.large.1))
    );
    summary::record(&[
        Figure::new(
            "sched_pick_us_100k",
            worst(|d| d.large.0),
            "<= 10",
            how.clone(),
        ),
        Figure::new(
            "sched_pick_growth",
            worst(|d| d.large.0 / d.small.0),
            "<= 3",
            how,
        ),
    ]);
}

/// The summary's `switches_per_interactive`: runs cut per interactive query under the default policy.
fn record_switches(r: &MixedResult) {
    let how = format!(
        "runs the priority policy cut (cancelled requests) per USER query: {} cut for {INTERACTIVE} queries among {BACKGROUND} HOUSEKEEPING streams on {CPUS} slots, fake server at {} ms/token",
        r.cut,
        TOKEN_DELAY.as_millis()
    );
    summary::record(&[Figure::new(
        "switches_per_interactive",
        r.cut as f64 / INTERACTIVE as f64,
        "<= 1",
        how,
    )]);
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    println!("scheduler cost, microseconds: pick alone, and pick + charge + re-enqueue (a switch)");
    println!(
        "{:<10} {:>9} {:>10} {:>7} {:>11} {:>12} {:>7}",
        "policy", "pick 1k", "pick 100k", "growth", "switch 1k", "switch 100k", "growth"
    );
    let mut decisions = Vec::new();
    for policy in PolicyKind::ALL {
        pick_us(policy, 1_000); // warm-up
        let small = pick_us(policy, 1_000);
        let large = pick_us(policy, 100_000);
        decisions.push(Decision {
            policy,
            small,
            large,
        });
        println!(
            "{policy:<10} {:>9.3} {:>10.3} {:>7.2} {:>11.3} {:>12.3} {:>7.2}",
            small.0,
            large.0,
            large.0 / small.0,
            small.1,
            large.1,
            large.1 / small.1
        );
    }
    record_decisions(&decisions);
    println!();
    println!(
        "mixed load: {CPUS} slots, quantum {QUANTUM_TOKENS}, {BACKGROUND} HOUSEKEEPING x {BACKGROUND_TOKENS} tokens, \
         {INTERACTIVE} USER x {INTERACTIVE_TOKENS} tokens every {} ms, {} ms/token",
        INTERACTIVE_GAP.as_millis(),
        TOKEN_DELAY.as_millis()
    );
    let fifo = mixed(PolicyKind::RoundRobin, 1_000_000).await;
    println!(
        "{:<10} {:>10} {:>10} {:>12} {:>9} {:>6} {:>12}",
        "policy", "ttft p50", "ttft p99", "p50 vs fifo", "switches", "cut", "prompt toks"
    );
    let row = |name: &str, r: &MixedResult| {
        println!(
            "{:<10} {:>8.1}ms {:>8.1}ms {:>11.2}x {:>9} {:>6} {:>12}",
            name,
            ms(r.p50),
            ms(r.p99),
            ms(r.p50) / ms(fifo.p50).max(0.001),
            r.switches,
            r.cut,
            r.prefilled
        );
    };
    row("fifo", &fifo);
    for policy in PolicyKind::ALL {
        let r = mixed(policy, QUANTUM_TOKENS).await;
        row(policy.name(), &r);
        if policy == PolicyKind::Priority {
            record_switches(&r);
        }
    }
    println!();
    println!(
        "context switch cost: 1 slot, rr quantum {QUANTUM_TOKENS} vs fifo, 2 x 320 tokens, 600-word system prompt, 50 us per prompt token"
    );
    println!(
        "{:<28} {:>9} {:>16} {:>22}",
        "backend", "switches", "added ms/switch", "re-processed tok/switch"
    );
    for (name, kind) in [
        ("openai (plain continuation)", ServerKind::OpenAi),
        (
            "llamacpp (id_slot + cache)",
            ServerKind::LlamaCpp { slots: 1 },
        ),
    ] {
        let c = switch_cost(kind).await;
        println!(
            "{:<28} {:>9} {:>16.2} {:>22.1}",
            name, c.switches, c.added_ms_per_switch, c.reprocessed_per_switch
        );
    }
}
