//! Durability: how the process table reaches the journal and comes back from it. Creation is
//! written and synced before it is acknowledged; state changes (start, stop, switch, finish, reap,
//! renice) are synced as they happen; output is checkpointed at quantum boundaries and whenever a
//! process leaves its slot, so a crash loses at most the last quantum of a running process, which is
//! then generated again as a continuation. A write that fails marks the journal damaged: new
//! processes are refused until a compaction (tried before each creation) rewrites it whole, which is
//! how the kernel recovers by itself once the disk has room again.

use super::KernelState;
use crate::kernel::journal::record::{
    CreatedRecord, DurableState, OutputRecord, ProcessImage, Record,
};
use crate::kernel::journal::{Journal, Recovered};
use crate::kernel::process::{Process, Spec};
use crate::proto::{Failure, FailureKind, Pid, ProcessState};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What [`KernelState::restore`] brought back, for the log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Restored {
    pub waiting: usize,
    pub stopped: usize,
    pub finished: usize,
    pub expired: usize,
    pub truncated_bytes: u64,
}

fn durable_state(state: ProcessState, running: bool) -> DurableState {
    match state {
        ProcessState::Zombie => DurableState::Zombie,
        ProcessState::Stopped => DurableState::Stopped,
        _ if running => DurableState::Running,
        _ => DurableState::Waiting,
    }
}

impl KernelState {
    /// Attaches the journal and rebuilds the table from what it recovered: waiting and running
    /// processes wait again in their old order (running ones continue their output later), stopped
    /// ones stay stopped, finished ones keep their output and status until collected or until the
    /// retention passes.
    pub fn restore(&mut self, journal: Journal, recovered: Recovered) -> Restored {
        let mut restored = Restored {
            truncated_bytes: recovered.truncated_bytes,
            ..Default::default()
        };
        self.journal = Some(journal);
        self.next_pid = self.next_pid.max(recovered.next_pid);
        let now = unix_ms();
        let retention_ms = self.config.retention.as_millis() as u64;
        let mut order: Vec<(u64, Pid)> = Vec::new();
        for (pid, image) in recovered.processes {
            if image.state == DurableState::Zombie
                && image
                    .exited_unix_ms
                    .is_some_and(|t| now.saturating_sub(t) > retention_ms)
            {
                restored.expired += 1;
                continue;
            }
            let p = process_from_image(&image, now);
            match image.state {
                DurableState::Zombie => restored.finished += 1,
                DurableState::Stopped => restored.stopped += 1,
                DurableState::Waiting | DurableState::Running => {
                    restored.waiting += 1;
                    order.push((image.created.enqueued_unix_ms, pid));
                }
            }
            self.table.insert(pid, p);
        }
        order.sort_unstable();
        for (_, pid) in order {
            if let Some(p) = self.table.get(&pid) {
                let c = self.candidate(p);
                self.scheduler.enqueue(&c);
            }
        }
        self.compact();
        restored
    }

    /// Appends a record. Failures are logged and mark the journal damaged (see the module docs).
    pub(super) fn record(&mut self, record: Record, sync: bool) -> Result<(), Failure> {
        let live = self.table.len();
        let Some(journal) = self.journal.as_mut() else {
            return Ok(());
        };
        if let Err(e) = journal.append(&record, sync) {
            tracing::error!("cannot write the journal: {e}");
            return Err(Failure::new(
                FailureKind::Unavailable,
                format!("cannot record it durably: {e}"),
            ));
        }
        if journal.wants_compaction(live) {
            self.compact();
        }
        Ok(())
    }

    /// Writes the output `pid` produced since its last checkpoint, and syncs.
    pub(super) fn checkpoint(&mut self, pid: Pid) {
        let Some(p) = self.table.get_mut(&pid) else {
            return;
        };
        if p.checkpointed >= p.output.len() {
            return;
        }
        let record = Record::Output(OutputRecord {
            pid,
            offset: p.checkpointed as u64,
            text: p.output[p.checkpointed..].to_string(),
            tokens_used: p.tokens_used,
            prompt_tokens: p.prompt_tokens,
        });
        let end = p.output.len();
        if self.record(record, true).is_ok()
            && let Some(p) = self.table.get_mut(&pid)
        {
            p.checkpointed = end;
        }
    }

    /// Records where `pid` stands now (after a start, switch, stop or continue), with its output.
    pub(super) fn record_state(&mut self, pid: Pid) {
        self.checkpoint(pid);
        let Some(p) = self.table.get(&pid) else {
            return;
        };
        let record = Record::State {
            pid,
            state: durable_state(p.state, p.run.is_some()),
            enqueued_unix_ms: p.enqueued_ms,
            context_switches: p.context_switches,
            cpu_ms: p.cpu_ms,
        };
        let _ = self.record(record, true);
    }

    /// Makes a new process durable before it exists in the table. Tries a compaction first when an
    /// earlier write failed, so space returning on the disk is noticed by the next creation.
    pub(super) fn record_creation(
        &mut self,
        pid: Pid,
        spec: &Spec,
        nice: i8,
        now_ms: u64,
    ) -> Result<(), Failure> {
        if self.journal.as_ref().is_some_and(Journal::is_damaged) && !self.compact() {
            let dir = self.config.state_dir.display().to_string();
            let message = format!(
                "cannot record new processes in {dir} (the disk is full or the directory is not writable); \
                 refusing them until it can"
            );
            return Err(Failure::new(FailureKind::Unavailable, message));
        }
        let record = Record::Created(CreatedRecord {
            pid,
            uid: spec.uid,
            process_type: spec.process_type,
            system: spec.system.clone(),
            prompt: spec.prompt.clone(),
            allowance: spec.allowance,
            nice,
            created_unix_ms: unix_ms(),
            enqueued_unix_ms: now_ms,
        });
        self.record(record, true).map_err(|f| {
            let dir = self.config.state_dir.display();
            Failure::new(
                FailureKind::Unavailable,
                format!("{} in {dir}; the process was not created", f.message),
            )
        })
    }

    /// Rewrites the journal from the table. Returns whether it worked.
    pub fn compact(&mut self) -> bool {
        let images: Vec<ProcessImage> = self.table.values().map(|p| self.image(p)).collect();
        let next_pid = self.next_pid;
        let Some(journal) = self.journal.as_mut() else {
            return true;
        };
        match journal.compact(images.iter(), next_pid) {
            Ok(()) => {
                for p in self.table.values_mut() {
                    p.checkpointed = p.output.len();
                }
                true
            }
            Err(e) => {
                tracing::error!("cannot compact the journal: {e}");
                false
            }
        }
    }

    fn image(&self, p: &Process) -> ProcessImage {
        let age_ms = p.created.elapsed().as_millis() as u64;
        ProcessImage {
            created: CreatedRecord {
                pid: p.pid,
                uid: p.spec.uid,
                process_type: p.spec.process_type,
                system: p.spec.system.clone(),
                prompt: p.spec.prompt.clone(),
                allowance: p.spec.allowance,
                nice: p.nice,
                created_unix_ms: unix_ms().saturating_sub(age_ms),
                enqueued_unix_ms: p.enqueued_ms,
            },
            state: durable_state(p.state, p.run.is_some()),
            output: p.output.clone(),
            tokens_used: p.tokens_used,
            prompt_tokens: p.prompt_tokens,
            context_switches: p.context_switches,
            cpu_ms: p.cpu_ms_now(),
            exit: p.exit.clone(),
            note: p.note.clone(),
            exited_unix_ms: p.exited_unix_ms,
        }
    }
}

/// A process as the journal remembers it, ready for the table.
fn process_from_image(image: &ProcessImage, now_unix_ms: u64) -> Process {
    let c = &image.created;
    let spec = Spec {
        uid: c.uid,
        process_type: c.process_type,
        system: c.system.clone(),
        prompt: c.prompt.clone(),
        allowance: c.allowance,
    };
    let mut p = Process::new(c.pid, spec, c.nice, c.enqueued_unix_ms);
    let age = Duration::from_millis(now_unix_ms.saturating_sub(c.created_unix_ms));
    p.created = Instant::now().checked_sub(age).unwrap_or_else(Instant::now);
    p.output = image.output.clone();
    p.checkpointed = p.output.len();
    p.tokens_used = image.tokens_used;
    p.prompt_tokens = image.prompt_tokens;
    p.context_switches = image.context_switches;
    p.cpu_ms = image.cpu_ms;
    p.note = image.note.clone();
    p.exited_unix_ms = image.exited_unix_ms;
    p.state = match image.state {
        DurableState::Zombie => ProcessState::Zombie,
        DurableState::Stopped => ProcessState::Stopped,
        DurableState::Waiting | DurableState::Running => ProcessState::Waiting,
    };
    p.exit = image.exit.clone();
    p
}
