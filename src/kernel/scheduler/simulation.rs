//! Scheduling simulations: the real [`KernelState`] transitions (dispatch, tokens, quantum boundaries,
//! run ends, signals) driven tick by tick by a model of the fake server, on a simulated clock. They
//! prove each policy's defining property and that none starves, and a seeded random search checks over
//! many arrival sequences that every process finishes exactly once with its whole answer.

use crate::config::KernelConfig;
use crate::config::PolicyKind;
use crate::kernel::make_policy;
use crate::kernel::process::{Ask, Spec};
use crate::kernel::scheduler::Scheduler;
use crate::kernel::state::{KernelState, RunOutcome};
use crate::proto::{ExitStatus, Pid, ProcessState, ProcessType, Role};
use std::collections::BTreeMap;

/// Simulated milliseconds per generated token.
const TICK_MS: u64 = 10;

/// A run on the simulated server: the next token index and where the answer stops.
struct SimRun {
    run_id: u64,
    next: usize,
    end: usize,
}

/// A kernel state and a model of the backend: every process's answer is `t0 t1 ...` of its length.
pub(super) struct Sim {
    pub state: KernelState,
    runs: BTreeMap<Pid, SimRun>,
    lengths: BTreeMap<Pid, usize>,
    pub launches: usize,
    /// The slot of each launch, by process, in order.
    pub slots_of: BTreeMap<Pid, Vec<u32>>,
    /// Which process generated each token, in order.
    pub trace: Vec<Pid>,
    completions: BTreeMap<Pid, usize>,
}

impl Sim {
    pub fn new(policy: PolicyKind, cpus: u32, quantum: u32) -> Sim {
        Sim::configured(policy, cpus, quantum, |_| {})
    }

    /// A simulation whose kernel config `adjust` changes first.
    pub fn configured(
        policy: PolicyKind,
        cpus: u32,
        quantum: u32,
        adjust: impl FnOnce(&mut KernelConfig),
    ) -> Sim {
        let mut config = KernelConfig {
            cpus,
            quantum_tokens: quantum,
            policy,
            ..KernelConfig::default()
        };
        adjust(&mut config);
        let policy = make_policy(policy, &config);
        Sim {
            state: KernelState::new(config, Scheduler::new(policy)),
            runs: BTreeMap::new(),
            lengths: BTreeMap::new(),
            launches: 0,
            slots_of: BTreeMap::new(),
            trace: Vec::new(),
            completions: BTreeMap::new(),
        }
    }

    /// Moves the clock to the start of the next period of `period_ms` (the kernel clock follows the
    /// wall clock, so a test about periods must not depend on where in one it starts).
    pub fn align_clock(&mut self, period_ms: u64) {
        let now = self.state.now_ms();
        self.state.advance_clock(period_ms - now % period_ms);
    }

    /// Submits a process whose answer is `length` tokens.
    pub fn submit(&mut self, t: ProcessType, nice: i8, uid: u32, length: usize) -> Pid {
        self.submit_asked(t, nice, uid, length, Ask::default())
    }

    /// Submits a process of type `t` asking `prompt`, whose answer is `length` tokens.
    pub fn submit_prompt(&mut self, t: ProcessType, prompt: &str, length: usize) -> Pid {
        self.create(t, 0, 1, prompt.into(), length, Ask::default())
    }

    /// Submits a process whose answer is `length` tokens, asking `ask` beyond its prompt (a
    /// deadline).
    pub fn submit_asked(
        &mut self,
        t: ProcessType,
        nice: i8,
        uid: u32,
        length: usize,
        ask: Ask,
    ) -> Pid {
        self.create(t, nice, uid, format!("job of {length}"), length, ask)
    }

    fn create(
        &mut self,
        t: ProcessType,
        nice: i8,
        uid: u32,
        prompt: String,
        length: usize,
        ask: Ask,
    ) -> Pid {
        let spec = Spec {
            uid,
            process_type: t,
            system: None,
            prompt,
            allowance: 100_000,
        };
        let (pid, _) = self.state.create_asked(spec, ask, nice);
        self.lengths.insert(pid, length);
        self.dispatch();
        pid
    }

    /// Starts what the state dispatches, checking each resume carries exactly the output so far.
    pub fn dispatch(&mut self) {
        for launch in self.state.dispatch() {
            self.launches += 1;
            let p = self.state.get(launch.pid).expect("launched process exists");
            let prefix = match launch.generation.messages.last() {
                Some(m) if m.role == Role::Assistant => m.content.clone(),
                _ => String::new(),
            };
            assert_eq!(prefix, p.output(), "a resume continues the output so far");
            let next = prefix.split_inclusive(' ').count();
            assert_eq!(prefix, answer(next), "the output so far is unbroken");
            let end = self.lengths[&launch.pid];
            let slot = launch.generation.slot;
            self.slots_of.entry(launch.pid).or_default().push(slot);
            // The server reports the prompt it read: a word a token, in this model.
            let prompt_tokens: usize = launch
                .generation
                .messages
                .iter()
                .map(|m| m.content.split_whitespace().count())
                .sum();
            let prompt_tokens = u32::try_from(prompt_tokens).unwrap_or(u32::MAX);
            self.state
                .on_usage(launch.pid, launch.run_id, prompt_tokens);
            let old = self.runs.insert(
                launch.pid,
                SimRun {
                    run_id: launch.run_id,
                    next,
                    end,
                },
            );
            assert!(old.is_none(), "{} launched twice at once", launch.pid);
        }
    }

    /// One token time: every running process generates a token (or completes), then the clock moves.
    pub fn tick(&mut self) {
        let pids: Vec<Pid> = self.runs.keys().copied().collect();
        for pid in pids {
            let Some(run) = self.runs.get_mut(&pid) else {
                continue;
            };
            let run_id = run.run_id;
            if run.next >= run.end {
                self.runs.remove(&pid);
                *self.completions.entry(pid).or_default() += 1;
                let outcome = RunOutcome::Completed {
                    finish_reason: Some("stop".into()),
                };
                self.state.on_run_end(pid, run_id, outcome);
            } else {
                let text = format!("t{} ", run.next);
                run.next += 1;
                self.trace.push(pid);
                if !self.state.on_text(pid, run_id, text) {
                    self.runs.remove(&pid);
                    self.state.on_run_end(pid, run_id, RunOutcome::Cancelled);
                }
            }
            self.dispatch();
        }
        self.state.advance_clock(TICK_MS);
    }

    /// The run task of a stopped or killed process notices its cancellation.
    pub fn cancel_ended_runs(&mut self) {
        let ended: Vec<(Pid, u64)> = self
            .runs
            .iter()
            .filter(|(pid, _)| self.state.get(**pid).is_none_or(|p| !p.holds_its_slot()))
            .map(|(pid, r)| (*pid, r.run_id))
            .collect();
        for (pid, run_id) in ended {
            self.runs.remove(&pid);
            self.state.on_run_end(pid, run_id, RunOutcome::Cancelled);
        }
        self.dispatch();
    }

    pub fn finished(&self, pid: Pid) -> bool {
        self.state
            .get(pid)
            .is_some_and(|p| p.exit() == Some(&ExitStatus::Finished))
    }

    pub fn running(&self, pid: Pid) -> bool {
        self.runs.contains_key(&pid)
    }

    /// Checks every submitted process finished once, with its whole answer.
    pub fn assert_all_finished_once(&self) {
        for (pid, len) in &self.lengths {
            let p = self.state.get(*pid).expect("zombies stay in the table");
            assert_eq!(p.state(), ProcessState::Zombie, "{pid} did not finish");
            assert_eq!(p.output(), answer(*len), "{pid}'s answer");
            assert_eq!(self.completions.get(pid), Some(&1), "{pid} completed once");
        }
    }

    /// Tokens generated by `pid` in the trace.
    pub fn tokens_of(&self, pid: Pid) -> usize {
        self.trace.iter().filter(|p| **p == pid).count()
    }
}

pub(super) fn answer(n: usize) -> String {
    (0..n).map(|i| format!("t{i} ")).collect()
}

/// splitmix64: a small seeded generator, so a failing case can be replayed from its seed.
pub(super) struct Rng(u64);

impl Rng {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n.max(1)
    }
}

#[path = "simulation_tests.rs"]
mod tests;

#[path = "switching_tests.rs"]
mod switching_tests;

#[path = "deadline_tests.rs"]
mod deadline_tests;

#[path = "quota_tests.rs"]
mod quota_tests;

#[path = "soft_limit_tests.rs"]
mod soft_limit_tests;

#[path = "affinity_tests.rs"]
mod affinity_tests;
