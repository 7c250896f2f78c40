//! The kernel's in-memory state: the process table, the scheduler and the slots, with every
//! transition of a process's life. All of it sits behind one mutex in [`super::Kernel`]; every method
//! here is synchronous and short, so the lock is never held across an `.await`. The decisions to switch
//! a process out (at once for more urgent work, or at a quantum boundary) and the slots kept for
//! interactive work live in [`preemption`], how a run's end moves its process on (and how a failing
//! backend is waited out) in [`run_end`], the `ps` view in [`listing`], the audit log in [`audit`],
//! the reaping of zombies past their retention in [`retention`], several backends as one machine
//! (placement by model, migration, failover) in [`smp`], and pipes and process groups (a reader
//! blocked on its upstream's output, a group signalled whole) in [`pipes`].

mod audit;
mod choices;
mod control;
pub mod deadlines;
mod durable;
mod listing;
mod memory;
pub mod observe;
mod output;
pub mod pipes;
mod preemption;
pub mod process;
mod quota;
mod retention;
#[cfg(test)]
mod retry_tests;
mod run_end;
mod smp;
#[cfg(test)]
mod smp_tests;
pub mod soft_limit;
mod syscalls;
#[cfg(test)]
mod syscalls_tests;
mod syscalls_wait;
pub mod waiting;

pub use control::Collect;
pub use durable::{Restored, unix_ms};
pub use listing::no_such_process;
pub use output::{Follower, OUTPUT_CHUNK_BYTES};

use super::circuit::BackendCircuit;
use super::scheduler::eta::RateEstimate;
use super::scheduler::switches::{SlotRun, SwitchLedger};
use super::scheduler::{Candidate, Scheduler};
use crate::config::KernelConfig;
use crate::kernel::journal::record::Record;
use crate::kernel::journal::writer::{Ack, JournalHandle};
use crate::kernel::memory::affinity;
use crate::llm::Generation;
use crate::proto::{
    ExitStatus, Failure, FailureKind, OutputChunk, Pid, ProcessState, Response, Signal,
};
use process::{Ask, Process, Run, Spec};
use std::collections::BTreeMap;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// A run the caller must start: the state has already put the process on the slot.
pub struct Launch {
    pub pid: Pid,
    pub run_id: u64,
    pub generation: Generation,
    pub cancel: CancellationToken,
    /// Slot caches to save and restore before the generation starts (see [`crate::kernel::memory::swap`]).
    pub swap: crate::kernel::memory::swap::SwapPlan,
    /// The backend (index in the pool) whose slot it runs on; `generation.slot` is that server's.
    pub backend: usize,
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
    /// The backend failed this request while its health check answered: the request's own failure
    /// (see [`super::circuit`]).
    Rejected(crate::llm::BackendError),
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
    /// Added to the clock: lets simulations run hours of scheduling in no time.
    clock_offset_ms: u64,
    /// Recent stints on the slots, for the ETA of waiting processes.
    rates: RateEstimate,
    /// Processes switched back onto a slot after leaving one with work left (all processes together).
    pub context_switches: u64,
    /// Recent switches, what they cost, and when interactive work was last about.
    switching: SwitchLedger,
    /// Set at shutdown: nothing new is dispatched.
    pub draining: bool,
    /// Whether the backend may be sent work now (see [`super::circuit`]).
    pub circuit: BackendCircuit,
    /// The durable table's writer; `None` only in simulations.
    journal: Option<JournalHandle>,
    /// Who created, killed, stopped and reniced what (`audit.log` in the state directory).
    audit_log: Option<audit::AuditLog>,
    /// Wall-clock milliseconds at start: the kernel clock continues from it monotonically, so queue
    /// entry times mean the same after a restart.
    clock_base_ms: u64,
    /// Context sizes, slot caches and swap (see [`crate::kernel::memory`]).
    pub memory: crate::kernel::memory::Memory,
    /// Which slots belong to which backend, the models each serves and its health (SMP).
    pub pool: crate::kernel::backends::Pool,
    /// Deadlines not yet passed (see [`deadlines`]).
    deadlines: deadlines::DeadlineIndex,
    /// Token quotas: what each user and type used, and whom they hold (see [`quota`]).
    quotas: quota::QuotaLedger,
}

impl KernelState {
    pub fn new(config: KernelConfig, scheduler: Scheduler) -> KernelState {
        let slots = vec![None; config.cpus as usize];
        let swap = crate::kernel::memory::swap::SwapSpace::new(&config.swap);
        let memory = crate::kernel::memory::Memory::new(config.cpus, swap);
        let pool = crate::kernel::backends::Pool::single(&config.backend_url, config.cpus);
        KernelState {
            pool,
            memory,
            config,
            table: BTreeMap::new(),
            scheduler,
            slots,
            next_pid: 1,
            next_run_id: 1,
            clock: Instant::now(),
            clock_offset_ms: 0,
            rates: RateEstimate::default(),
            context_switches: 0,
            switching: SwitchLedger::default(),
            draining: false,
            circuit: BackendCircuit::default(),
            journal: None,
            audit_log: None,
            clock_base_ms: unix_ms(),
            deadlines: deadlines::DeadlineIndex::default(),
            quotas: quota::QuotaLedger::default(),
        }
    }

    /// Kernel-clock milliseconds (wall-clock at start, then monotonic): the time base of aging and
    /// boosts, and of queue order across restarts.
    pub fn now_ms(&self) -> u64 {
        self.clock_base_ms + self.clock.elapsed().as_millis() as u64 + self.clock_offset_ms
    }

    /// Moves the kernel clock forward (simulations and the scheduling benchmarks).
    pub fn advance_clock(&mut self, ms: u64) {
        self.clock_offset_ms += ms;
    }

    pub fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    pub fn get(&self, pid: Pid) -> Option<&Process> {
        self.table.get(&pid)
    }

    pub fn get_mut(&mut self, pid: Pid) -> Option<&mut Process> {
        self.table.get_mut(&pid)
    }

    /// The process, if `uid` may act on it (its owner, or root; see [`KernelState::owned`]).
    pub fn owned_mut(&mut self, pid: Pid, uid: u32) -> Result<&mut Process, Failure> {
        self.owned(pid, uid)?;
        self.table.get_mut(&pid).ok_or_else(|| no_such_process(pid))
    }

    /// What the scheduler sees of `p`, as of its entry into the queue.
    fn candidate(&self, p: &Process) -> Candidate {
        Candidate {
            pid: p.pid,
            uid: p.spec.uid,
            base_priority: self.config.type_settings(p.spec.process_type).base_priority,
            nice: p.nice,
            enqueued_ms: p.enqueued_ms,
            tokens_used: p.tokens_used,
            interactive: self.config.scheduler.is_interactive(p.spec.process_type),
            deadline_ms: p.deadline.and_then(|d| d.urgent_at()),
        }
    }

    /// What the scheduler sees of `p` weighed at `now_ms` (a running process at a boundary).
    fn candidate_at(&self, p: &Process, now_ms: u64) -> Candidate {
        Candidate {
            enqueued_ms: now_ms,
            ..self.candidate(p)
        }
    }

    /// Adds a process to the table and the run queue (a process made inside the kernel, such as an
    /// interrupt's handler, which nobody waits to see acknowledged).
    pub fn create(&mut self, spec: Spec, nice: i8) -> Result<Pid, Failure> {
        Ok(self.create_acked(spec, nice).0)
    }

    /// Adds a process to the table and the run queue at once, so it may start on a slot while its
    /// creation is being synced; the acknowledgement says when the creation is durable. If it fails,
    /// the caller takes the process back with [`KernelState::abort_creation`].
    pub fn create_acked(&mut self, spec: Spec, nice: i8) -> (Pid, Ack) {
        self.create_asked(spec, Ask::default(), nice)
    }

    /// [`KernelState::create_acked`] for a request that carries a conversation, a model or
    /// sampling parameters.
    pub fn create_asked(&mut self, spec: Spec, ask: Ask, nice: i8) -> (Pid, Ack) {
        let pid = Pid(self.next_pid);
        let now = self.now_ms();
        let ack = self.record_creation(pid, &spec, &ask, nice, now);
        self.next_pid += 1;
        let uid = spec.uid;
        let mut detail = format!("type={} nice={nice}", spec.process_type);
        if let Some(origin) = &ask.origin {
            detail.push_str(&format!(" from={origin:?}"));
        }
        let deadline = ask.deadline;
        let process = Process::new(pid, spec, nice, now).with_ask(ask);
        self.table.insert(pid, process);
        self.set_deadline(pid, deadline, now);
        self.enqueue(pid);
        self.audit(uid, "created", pid, &detail);
        (pid, ack)
    }

    /// What a follow-up question to `pid` asks (`query --continue`): its conversation with its
    /// answer, then `question`, for the same model with the same parameters. Only a process that
    /// has finished its answer can be followed up.
    pub fn follow_up(&self, pid: Pid, uid: u32, question: &str) -> Result<Ask, Failure> {
        let p = self.owned(pid, uid)?;
        if p.state != ProcessState::Zombie {
            return Err(Failure::new(
                FailureKind::BadRequest,
                format!("({pid}) has not finished; continue it once it has"),
            ));
        }
        let mut messages = p.conversation();
        messages.push(crate::proto::ChatMessage {
            role: crate::proto::Role::User,
            content: question.to_string(),
        });
        Ok(Ask {
            messages,
            ..p.ask.clone()
        })
    }

    /// Takes back a process whose creation could not be made durable: it was never acknowledged, so
    /// it leaves no trace (its run, if it started, is cancelled and its slot freed when it ends).
    pub fn abort_creation(&mut self, pid: Pid) {
        self.scheduler.retire(pid);
        let Some(p) = self.table.get_mut(&pid) else {
            return;
        };
        p.followers.clear();
        p.state = ProcessState::Zombie;
        p.collected = true;
        match &mut p.run {
            Some(run) => {
                run.ending = true;
                run.cancel.cancel();
            }
            None => {
                self.table.remove(&pid);
            }
        }
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

    /// Fills free slots from the run queue, then switches out less urgent work for a more urgent
    /// waiting process if no slot is free for it; the caller starts the returned runs. Background
    /// work does not take the slots kept for interactive work while the reservation holds. A process
    /// goes back to the slot it last ran on when that one is free, so a backend that keeps a slot's
    /// cache (and is told the slot) need not recompute the conversation; with several backends it
    /// runs on a slot of one serving its model, migrating when its own is taken (see [`smp`]).
    pub fn dispatch(&mut self) -> Vec<Launch> {
        let now = self.now_ms();
        self.expire_deadlines(now);
        self.release_quota_holds(now);
        self.note_interactive_work(now);
        let mut launches = Vec::new();
        while !self.draining {
            // While the backend is failing, processes wait in the queue instead of burning tries.
            if !self.circuit.admits(now) {
                break;
            }
            let interactive_only = !self.background_room(now, false);
            let Some((pid, slot)) = self.pick_placed(interactive_only) else {
                break;
            };
            if self.held_for_quota(pid, now) {
                continue;
            }
            let Some(p) = self.table.get(&pid) else {
                continue;
            };
            let priority = self.scheduler.display_priority(&self.candidate(p), now);
            let launch = self.start_run(pid, slot, priority);
            launches.extend(launch);
        }
        if !self.draining && self.circuit.admits(now) {
            self.preempt_for_urgent(now);
        }
        launches
    }

    /// Puts `pid` on `slot` with a new run.
    fn start_run(&mut self, pid: Pid, slot: u32, priority: i32) -> Option<Launch> {
        let run_id = self.next_run_id;
        self.next_run_id += 1;
        let now = self.now_ms();
        let (backend, local_slot) = self.enter_backend(pid, slot);
        let p = self.table.get_mut(&pid)?;
        let cancel = CancellationToken::new();
        let resumed = p.tokens_used > 0 || !p.output.is_empty();
        if resumed {
            p.context_switches += 1;
            self.context_switches += 1;
        }
        let run = SlotRun {
            pid,
            run_id,
            started_ms: now,
            resumed,
        };
        self.switching.started(slot, run);
        p.state = ProcessState::Running;
        p.last_slot = Some(slot);
        p.run = Some(Run {
            id: run_id,
            slot,
            cancel: cancel.clone(),
            started: Instant::now(),
            tokens: 0,
            ending: false,
        });
        self.slots[slot as usize] = Some(pid);
        let generation = Generation {
            messages: soft_limit::run_messages(p),
            max_tokens: p.remaining_tokens().max(1),
            slot: local_slot,
            priority,
            model: p.ask.model.clone(),
            params: p.ask.params.clone(),
        };
        if let Some(head) = self.memory.heads.get_mut(slot as usize) {
            *head = affinity::head(&generation.messages);
        }
        // The start is made durable by `record_started`, once the run is on its way.
        self.circuit.dispatched(run_id);
        let swap = self.plan_swap(pid, slot);
        Some(Launch {
            pid,
            run_id,
            generation,
            cancel,
            swap,
            backend,
        })
    }

    /// How long until the backend circuit's backoff is over, once per opening: the caller arms a
    /// timer to dispatch again then.
    pub fn circuit_timer(&mut self) -> Option<std::time::Duration> {
        let now = self.now_ms();
        let until = self.circuit.wake_at()?;
        Some(std::time::Duration::from_millis(until.saturating_sub(now)))
    }

    /// A run produced text. Returns whether the run should go on.
    pub fn on_text(&mut self, pid: Pid, run_id: u64, text: String) -> bool {
        let quantum = self.config.quantum_tokens.max(1);
        let now = self.now_ms();
        let Some(p) = self.table.get_mut(&pid) else {
            return false;
        };
        if !p.run.as_ref().is_some_and(|r| r.id == run_id && !r.ending) {
            return false;
        }
        if p.remaining_tokens() == 0 {
            // A server that ignores max_tokens: the kernel holds the allowance itself.
            let note = p.allowance_note();
            self.finish(pid, ExitStatus::Finished, Some(note));
            return false;
        }
        let Some(run) = p.run.as_mut() else {
            return false;
        };
        run.tokens += 1;
        self.pool.count_token(run.slot, now);
        if run.tokens == 1 {
            // The backend answers: whatever this process was waiting out is over.
            p.retry = None;
            self.circuit.answered();
        }
        let at_boundary = run.tokens % quantum == 0;
        p.tokens_used += 1;
        p.output.push_str(&text);
        if !text.is_empty() {
            p.broadcast(Ok(Response::Output(OutputChunk { pid, text })));
        }
        let over_limit = p.output.len() >= self.config.max_output_bytes;
        let c = self.candidate_at(&self.table[&pid], now);
        self.scheduler.charge(&c, 1, now);
        self.charge_quotas(pid, now);
        if over_limit {
            let note = output_limit_note(self.config.max_output_bytes);
            self.finish(pid, ExitStatus::Finished, Some(note));
            return false;
        }
        if !at_boundary {
            return true;
        }
        self.checkpoint(pid);
        self.record_quota_use();
        if self.leaves_for_quota(pid, now) {
            return false;
        }
        if self.tells_to_wrap_up(pid) {
            return false;
        }
        // A process a continuation could break keeps its slot; a TERM still ends it here.
        let p = &self.table[&pid];
        if p.unsliced && p.at_boundary != process::AtBoundary::Terminate {
            return true;
        }
        self.quantum_boundary(pid)
    }

    /// The backend's own token counts for the current run.
    pub fn on_usage(&mut self, pid: Pid, run_id: u64, prompt_tokens: u32) {
        if let Some(p) = self
            .table
            .get_mut(&pid)
            .filter(|p| p.run.as_ref().is_some_and(|r| r.id == run_id))
        {
            p.prompt_tokens += prompt_tokens;
            self.switching.on_usage(run_id, prompt_tokens);
        }
    }

    /// Ends a process. Waiters get the status and reap it; otherwise it stays a zombie.
    pub fn finish(&mut self, pid: Pid, status: ExitStatus, note: Option<String>) {
        let _ = self.finish_acked(pid, status, note);
    }

    /// Ends a process; returns when its exit is durable. Waiters and followers are told the status
    /// only then, so no client ever sees an exit a crash could undo.
    pub fn finish_acked(&mut self, pid: Pid, status: ExitStatus, note: Option<String>) -> Ack {
        self.scheduler.retire(pid);
        let Some(p) = self.table.get_mut(&pid) else {
            return Ack::done();
        };
        if p.exit.is_some() {
            return Ack::done();
        }
        self.forget_deadline(pid);
        let Some(p) = self.table.get_mut(&pid) else {
            return Ack::done();
        };
        if p.note.is_none() {
            p.note = note;
        }
        p.retry = None;
        let exited_unix_ms = unix_ms();
        p.exited_unix_ms = Some(exited_unix_ms);
        self.record_quota_use();
        let Some(p) = self.table.get_mut(&pid) else {
            return Ack::done();
        };
        let record = Record::Finished {
            pid,
            status: status.clone(),
            note: p.note.clone(),
            exited_unix_ms,
        };
        let notice = p.exit_with(status);
        p.collected = notice.collects();
        self.memory.forget(pid);
        let collected = p.collected;
        self.checkpoint(pid);
        let (ack, resolve) = Ack::pending();
        if let Some(p) = self.table.get_mut(&pid) {
            p.exit_ack = Some(ack.clone());
        }
        self.record_then(record, move |result| {
            notice.deliver();
            resolve(result);
        });
        self.pipe_ended(pid);
        self.syscall_ended(pid);
        if collected {
            self.reap(pid);
        }
        ack
    }

    /// Ends a process killed by `signal`.
    pub fn kill(&mut self, pid: Pid, signal: Signal) {
        self.finish(pid, ExitStatus::Killed { signal }, None);
    }

    /// Removes a zombie from the table.
    pub fn reap(&mut self, pid: Pid) -> Option<Process> {
        self.reap_acked(pid).map(|(p, _)| p)
    }

    /// Removes a zombie from the table; the acknowledgement says when that is durable.
    pub fn reap_acked(&mut self, pid: Pid) -> Option<(Process, Ack)> {
        let p = self.table.get(&pid)?;
        if p.state != ProcessState::Zombie || p.run.is_some() {
            return None;
        }
        let ack = self.record_acked(Record::Reaped { pid });
        self.table.remove(&pid).map(|p| (p, ack))
    }

    /// Records the starts of just-dispatched runs. Called after their tasks are spawned, so the
    /// requests to the backend go out at once; the writer syncs them meanwhile.
    pub fn record_started(&mut self, pids: &[Pid]) {
        for pid in pids {
            let _ = self.record_state(*pid);
        }
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
}

/// The note of a process that reached the output limit (`max_output_bytes`).
pub(crate) fn output_limit_note(limit: usize) -> String {
    format!("stopped at the output limit ({limit} bytes)")
}

/// The note of a process that reached its token allowance.
pub(crate) fn allowance_note(allowance: u32) -> String {
    format!("stopped at its token allowance ({allowance})")
}
