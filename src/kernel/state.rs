//! The kernel's in-memory state: the process table, the scheduler and the slots, with every
//! transition of a process's life. All of it sits behind one mutex in [`super::Kernel`]; every method
//! here is synchronous and short, so the lock is never held across an `.await`.

use super::process::{AtBoundary, Process, Run, Spec};
use super::scheduler::{Candidate, Policy, Scheduler};
use crate::config::KernelConfig;
use crate::llm::Generation;
use crate::proto::{
    ExitStatus, Failure, FailureKind, OutputChunk, Pid, ProcessInfo, ProcessState, Response, Signal,
};
use std::collections::BTreeMap;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// A run the caller must start: the state has already put the process on the slot.
pub struct Launch {
    pub pid: Pid,
    pub run_id: u64,
    pub generation: Generation,
    pub cancel: CancellationToken,
}

/// How a run task ended.
#[derive(Debug)]
pub enum RunOutcome {
    /// The backend finished the answer.
    Completed { finish_reason: Option<String> },
    /// The kernel cancelled the run (signal, preemption, shutdown).
    Cancelled,
    /// The backend failed.
    Failed(crate::llm::BackendError),
}

pub struct KernelState {
    pub config: KernelConfig,
    table: BTreeMap<Pid, Process>,
    scheduler: Scheduler,
    /// `slots[i]` is the process running on slot i.
    slots: Vec<Option<Pid>>,
    next_pid: u64,
    next_run_id: u64,
    clock: Instant,
    pub context_switches: u64,
    /// Set at shutdown: nothing new is dispatched.
    pub draining: bool,
}

impl KernelState {
    pub fn new(config: KernelConfig, scheduler: Scheduler) -> KernelState {
        let slots = vec![None; config.cpus as usize];
        KernelState {
            config,
            table: BTreeMap::new(),
            scheduler,
            slots,
            next_pid: 1,
            next_run_id: 1,
            clock: Instant::now(),
            context_switches: 0,
            draining: false,
        }
    }

    /// Kernel-clock milliseconds: the time base of aging.
    pub fn now_ms(&self) -> u64 {
        self.clock.elapsed().as_millis() as u64
    }

    pub fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    pub fn scheduler_mut(&mut self) -> &mut Scheduler {
        &mut self.scheduler
    }

    pub fn get(&self, pid: Pid) -> Option<&Process> {
        self.table.get(&pid)
    }

    pub fn get_mut(&mut self, pid: Pid) -> Option<&mut Process> {
        self.table.get_mut(&pid)
    }

    /// The process, if `uid` may act on it (its owner, or root).
    pub fn owned_mut(&mut self, pid: Pid, uid: u32) -> Result<&mut Process, Failure> {
        let p = self.table.get_mut(&pid).ok_or_else(|| {
            Failure::new(
                FailureKind::NoSuchProcess,
                format!("({pid}) - No such process"),
            )
        })?;
        if uid != 0 && p.spec.uid != uid {
            return Err(Failure::new(
                FailureKind::PermissionDenied,
                format!("({pid}) - Operation not permitted"),
            ));
        }
        Ok(p)
    }

    fn candidate(&self, p: &Process) -> Candidate {
        Candidate {
            pid: p.pid,
            uid: p.spec.uid,
            base_priority: self.config.type_settings(p.spec.process_type).base_priority,
            nice: p.nice,
            enqueued_ms: p.enqueued_ms,
            tokens_used: p.tokens_used,
        }
    }

    /// Adds a process to the table and the run queue.
    pub fn create(&mut self, spec: Spec, nice: i8) -> Pid {
        let pid = Pid(self.next_pid);
        self.next_pid += 1;
        let process = Process::new(pid, spec, nice, self.now_ms());
        self.table.insert(pid, process);
        self.enqueue(pid);
        pid
    }

    /// Puts a process on the run queue, entering now.
    fn enqueue(&mut self, pid: Pid) {
        let now = self.now_ms();
        let Some(p) = self.table.get_mut(&pid) else {
            return;
        };
        p.state = ProcessState::Waiting;
        p.enqueued_ms = now;
        let c = self.candidate(&self.table[&pid]);
        self.scheduler.enqueue(&c);
    }

    /// Fills free slots from the run queue; the caller starts the returned runs.
    pub fn dispatch(&mut self) -> Vec<Launch> {
        let mut launches = Vec::new();
        while !self.draining {
            let Some(slot) = self.slots.iter().position(Option::is_none) else {
                break;
            };
            let Some(pid) = self.scheduler.pick() else {
                break;
            };
            let run_id = self.next_run_id;
            self.next_run_id += 1;
            let Some(p) = self.table.get_mut(&pid) else {
                continue;
            };
            let cancel = CancellationToken::new();
            let resumed = p.tokens_used > 0 || !p.output.is_empty();
            if resumed {
                p.context_switches += 1;
                self.context_switches += 1;
            }
            p.state = ProcessState::Running;
            p.last_slot = Some(slot as u32);
            p.run = Some(Run {
                id: run_id,
                slot: slot as u32,
                cancel: cancel.clone(),
                started: Instant::now(),
                tokens: 0,
                ending: false,
            });
            self.slots[slot] = Some(pid);
            let generation = Generation {
                messages: p.conversation(),
                max_tokens: p.remaining_tokens().max(1),
            };
            launches.push(Launch {
                pid,
                run_id,
                generation,
                cancel,
            });
        }
        launches
    }

    /// A run produced text. Returns whether the run should go on.
    pub fn on_text(&mut self, pid: Pid, run_id: u64, text: String) -> bool {
        let quantum = self.config.quantum_tokens.max(1);
        let Some(p) = self.table.get_mut(&pid) else {
            return false;
        };
        let Some(run) = p.run.as_mut().filter(|r| r.id == run_id && !r.ending) else {
            return false;
        };
        run.tokens += 1;
        let at_boundary = run.tokens % quantum == 0;
        p.tokens_used += 1;
        p.output.push_str(&text);
        p.broadcast(Ok(Response::Output(OutputChunk { pid, text })));
        let c = self.candidate(&self.table[&pid]);
        self.scheduler.charge(&c, 1);
        if !at_boundary {
            return true;
        }
        self.quantum_boundary(pid)
    }

    /// The decision at a quantum boundary: finish a TERM, or give the slot to a better process.
    fn quantum_boundary(&mut self, pid: Pid) -> bool {
        let Some(p) = self.table.get(&pid) else {
            return false;
        };
        if p.at_boundary == AtBoundary::Terminate {
            self.finish(
                pid,
                ExitStatus::Killed {
                    signal: Signal::Term,
                },
                None,
            );
            return false;
        }
        let mut c = self.candidate(p);
        c.enqueued_ms = self.now_ms();
        if !self.is_lowest_running(pid) || !self.scheduler.should_preempt(&c) {
            return true;
        }
        if let Some(run) = self.table.get_mut(&pid).and_then(|p| p.run.as_mut()) {
            run.ending = true;
            run.cancel.cancel();
        }
        false
    }

    /// Whether no other running process ranks below `pid` (the one to preempt first).
    fn is_lowest_running(&self, pid: Pid) -> bool {
        let now = self.now_ms();
        let rank = |p: &Process| {
            let mut c = self.candidate(p);
            c.enqueued_ms = now;
            self.scheduler.display_priority(&c, now)
        };
        let Some(me) = self.table.get(&pid).map(rank) else {
            return false;
        };
        self.slots
            .iter()
            .flatten()
            .filter(|other| **other != pid)
            .all(|other| self.table.get(other).map(rank).is_none_or(|r| r >= me))
    }

    /// A run task ended: release its slot and move the process on.
    pub fn on_run_end(&mut self, pid: Pid, run_id: u64, outcome: RunOutcome) {
        let Some(p) = self.table.get_mut(&pid) else {
            return;
        };
        let Some(run) = p.run.take_if(|r| r.id == run_id) else {
            return;
        };
        p.cpu_ms += run.started.elapsed().as_millis() as u64;
        if let Some(slot) = self.slots.get_mut(run.slot as usize) {
            *slot = None;
        }
        if p.state == ProcessState::Zombie && p.collected {
            self.table.remove(&pid);
            return;
        }
        if p.state != ProcessState::Running {
            return; // already stopped or ended by a signal
        }
        match outcome {
            RunOutcome::Completed { finish_reason } => {
                let note = (finish_reason.as_deref() == Some("length")
                    || p.remaining_tokens() == 0)
                    .then(|| format!("stopped at its token allowance ({})", p.spec.allowance));
                self.finish(pid, ExitStatus::Finished, note);
            }
            RunOutcome::Failed(e) => {
                let reason = e.to_string();
                self.finish(
                    pid,
                    ExitStatus::Failed {
                        reason: reason.clone(),
                    },
                    Some(reason),
                );
            }
            RunOutcome::Cancelled if self.draining => self.enqueue(pid),
            RunOutcome::Cancelled => self.enqueue(pid), // preempted at a quantum boundary
        }
    }

    /// The backend's own token counts for the current run.
    pub fn on_usage(&mut self, pid: Pid, run_id: u64, prompt_tokens: u32) {
        if let Some(p) = self
            .table
            .get_mut(&pid)
            .filter(|p| p.run.as_ref().is_some_and(|r| r.id == run_id))
        {
            p.prompt_tokens += prompt_tokens;
        }
    }

    /// Ends a process. Waiters get the status and reap it; otherwise it stays a zombie.
    pub fn finish(&mut self, pid: Pid, status: ExitStatus, note: Option<String>) {
        self.scheduler.remove(pid);
        let Some(p) = self.table.get_mut(&pid) else {
            return;
        };
        if p.note.is_none() {
            p.note = note;
        }
        p.collected = p.exit_with(status);
        if p.collected {
            self.reap(pid);
        }
    }

    /// Removes a zombie from the table.
    pub fn reap(&mut self, pid: Pid) -> Option<Process> {
        let p = self.table.get(&pid)?;
        if p.state != ProcessState::Zombie || p.run.is_some() {
            return None;
        }
        self.table.remove(&pid)
    }

    /// Takes a process off its slot or the queue: it holds nothing afterwards (STOP).
    pub fn stop(&mut self, pid: Pid) {
        self.scheduler.remove(pid);
        let Some(p) = self.table.get_mut(&pid) else {
            return;
        };
        if let Some(run) = &mut p.run {
            run.ending = true;
            run.cancel.cancel();
        }
        p.state = ProcessState::Stopped;
        p.broadcast(Ok(Response::Stopped(pid)));
    }

    /// Makes a stopped process runnable again (CONT).
    pub fn resume(&mut self, pid: Pid) {
        let Some(p) = self.table.get_mut(&pid) else {
            return;
        };
        if p.state != ProcessState::Stopped {
            return;
        }
        p.broadcast(Ok(Response::Continued(pid)));
        self.enqueue(pid);
    }

    /// Changes niceness; a waiting process is re-ranked now, a running one at its next boundary.
    pub fn renice(&mut self, pid: Pid, nice: i8) -> Option<i8> {
        let p = self.table.get_mut(&pid)?;
        let old = std::mem::replace(&mut p.nice, nice);
        if p.state == ProcessState::Waiting {
            let c = self.candidate(&self.table[&pid]);
            self.scheduler.enqueue(&c);
        }
        Some(old)
    }

    /// The `ps` rows visible to `uid`.
    pub fn list(&self, uid: u32, all_users: bool) -> Vec<ProcessInfo> {
        let now = self.now_ms();
        let positions: BTreeMap<Pid, u32> = self
            .scheduler
            .queue_order()
            .enumerate()
            .map(|(i, pid)| (pid, i as u32 + 1))
            .collect();
        self.table
            .values()
            .filter(|p| all_users || uid == 0 || p.spec.uid == uid)
            .map(|p| {
                let mut c = self.candidate(p);
                if p.state != ProcessState::Waiting {
                    c.enqueued_ms = now;
                }
                let priority = self.scheduler.display_priority(&c, now);
                let readable = uid == 0 || p.spec.uid == uid;
                p.info(priority, positions.get(&p.pid).copied(), readable)
            })
            .collect()
    }

    /// Processes waiting for a slot.
    pub fn waiting(&self) -> usize {
        self.scheduler.waiting()
    }

    /// Processes not yet ended.
    pub fn live(&self) -> usize {
        self.table
            .values()
            .filter(|p| p.state != ProcessState::Zombie)
            .count()
    }

    /// Cancels every run (shutdown): their processes go back to waiting with their output kept.
    pub fn cancel_all_runs(&mut self) {
        self.draining = true;
        for p in self.table.values_mut() {
            if let Some(run) = &mut p.run {
                run.cancel.cancel();
            }
        }
    }

    pub fn running(&self) -> usize {
        self.slots.iter().flatten().count()
    }

    /// Takes a new config, and a new policy if given, at run time: waiting processes are ranked again
    /// under them in their queue order; a running process meets them at its next quantum boundary.
    pub fn reconfigure(&mut self, config: KernelConfig, policy: Option<Box<dyn Policy>>) {
        self.config = config;
        if let Some(policy) = policy {
            self.scheduler.replace_policy(policy);
        }
        let waiting: Vec<Pid> = self.scheduler.queue_order().collect();
        for pid in waiting {
            if let Some(p) = self.table.get(&pid) {
                let c = self.candidate(p);
                self.scheduler.enqueue(&c);
            }
        }
    }
}
