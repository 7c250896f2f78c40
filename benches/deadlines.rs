//! Deadline benchmark: one seeded mixed load (short urgent questions and long relaxed answers of one
//! type, every process with a hard deadline) run through the kernel's real scheduling transitions on
//! a simulated clock, under `edf` and under `priority`, in the same run. It reports
//! `deadline_miss_ratio` for each (processes ended by their deadline, SIGXCPU, over all), and edf's as
//! a fraction of priority's. A simulation: no server, no wall time, the same numbers on every machine.
//! Run with `cargo bench --bench deadlines`.

#[allow(dead_code)] // each bench binary uses part of the support code
#[path = "support/mod.rs"]
mod support;

use llmkernel::config::{KernelConfig, PolicyKind};
use llmkernel::kernel::make_policy;
use llmkernel::kernel::process::{Ask, Spec};
use llmkernel::kernel::scheduler::Scheduler;
use llmkernel::kernel::state::{KernelState, RunOutcome};
use llmkernel::proto::{Deadline, ExitStatus, Pid, ProcessType, Signal};
use std::collections::BTreeMap;
use support::summary::{self, Figure};

/// Simulated milliseconds per generated token (100 tokens/s, a small model on one slot).
const TICK_MS: u64 = 10;
const CPUS: u32 = 2;
const QUANTUM_TOKENS: u32 = 8;
/// Processes in the load.
const PROCESSES: usize = 400;
/// The seed of the load, so every run measures the same one.
const SEED: u64 = 22;

struct Arrival {
    tick: u64,
    length: u32,
    within_ms: u64,
}

/// splitmix64, seeded: the load is the same on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n.max(1)
    }
}

/// About 85% of two slots (94 tokens every 55 ticks on average): one in four is a long answer with a relaxed deadline, the rest short
/// questions wanted soon.
fn load() -> Vec<Arrival> {
    let mut rng = Rng(SEED);
    let mut tick = 0;
    (0..PROCESSES)
        .map(|_| {
            let long = rng.below(4) == 0;
            let length = if long {
                200 + rng.below(200)
            } else {
                10 + rng.below(30)
            } as u32;
            let slack = if long {
                4 + rng.below(4)
            } else {
                2 + rng.below(3)
            };
            let within_ms = u64::from(length) * TICK_MS * slack + 200;
            tick += rng.below(110);
            Arrival {
                tick,
                length,
                within_ms,
            }
        })
        .collect()
}

/// Runs `load` under `policy`; the share of processes that missed their deadline.
fn miss_ratio(policy: PolicyKind, load: &[Arrival]) -> f64 {
    let config = KernelConfig {
        cpus: CPUS,
        quantum_tokens: QUANTUM_TOKENS,
        policy,
        ..KernelConfig::default()
    };
    let scheduler = Scheduler::new(make_policy(policy, &config));
    let mut state = KernelState::new(config, scheduler);
    // pid -> (run id, tokens sent so far, answer length)
    let mut runs: BTreeMap<Pid, (u64, u32, u32)> = BTreeMap::new();
    let mut lengths: BTreeMap<Pid, u32> = BTreeMap::new();
    let mut pids = Vec::new();
    let mut next = load.iter().peekable();
    let mut tick = 0;
    while next.peek().is_some()
        || pids
            .iter()
            .any(|p| state.get(*p).is_some_and(|p| p.exit().is_none()))
    {
        while let Some(a) = next.next_if(|a| a.tick <= tick) {
            let spec = Spec {
                uid: 1,
                process_type: ProcessType::User,
                system: None,
                prompt: "question".into(),
                allowance: 100_000,
            };
            let ask = Ask {
                deadline: Some(Deadline {
                    within_ms: a.within_ms,
                    soft: false,
                }),
                ..Ask::default()
            };
            let (pid, _) = state.create_asked(spec, ask, 0);
            lengths.insert(pid, a.length);
            pids.push(pid);
        }
        start(&mut state, &mut runs, &lengths);
        for pid in runs.keys().copied().collect::<Vec<_>>() {
            let Some((run_id, sent, length)) = runs.get_mut(&pid).map(|r| (r.0, &mut r.1, r.2))
            else {
                continue;
            };
            let outcome = if *sent >= length {
                Some(RunOutcome::Completed {
                    finish_reason: Some("stop".into()),
                })
            } else {
                *sent += 1;
                (!state.on_text(pid, run_id, "t ".into())).then_some(RunOutcome::Cancelled)
            };
            if let Some(outcome) = outcome {
                runs.remove(&pid);
                state.on_run_end(pid, run_id, outcome);
            }
            start(&mut state, &mut runs, &lengths);
        }
        state.advance_clock(TICK_MS);
        tick += 1;
    }
    let xcpu = ExitStatus::Killed {
        signal: Signal::Xcpu,
    };
    let missed = pids
        .iter()
        .filter(|p| state.get(**p).and_then(|p| p.exit()) == Some(&xcpu))
        .count();
    missed as f64 / pids.len() as f64
}

/// Starts what the state dispatches, each resuming where its output stopped.
fn start(
    state: &mut KernelState,
    runs: &mut BTreeMap<Pid, (u64, u32, u32)>,
    lengths: &BTreeMap<Pid, u32>,
) {
    for launch in state.dispatch() {
        let sent = state.get(launch.pid).map_or(0, |p| p.tokens_used());
        let length = lengths.get(&launch.pid).copied().unwrap_or(0);
        runs.insert(launch.pid, (launch.run_id, sent, length));
    }
}

fn main() {
    let load = load();
    let edf = miss_ratio(PolicyKind::Edf, &load);
    let priority = miss_ratio(PolicyKind::Priority, &load);
    println!(
        "deadline_miss_ratio: edf {edf:.3}, priority {priority:.3} ({PROCESSES} processes, {CPUS} slots)"
    );
    let note = format!(
        "{PROCESSES} USER processes with hard deadlines on {CPUS} slots (simulated clock, seed {SEED}); priority misses {priority:.3}"
    );
    summary::record(&[
        Figure::new("deadline_miss_ratio", edf, "<= 0.1", note),
        Figure::new(
            "deadline_miss_ratio_priority",
            priority,
            ">= 0",
            "the same load under priority, for comparison".into(),
        ),
    ]);
}
