//! Durability: how the process table reaches the journal and comes back from it. Every record goes
//! to the journal's writer thread ([`JournalHandle`]) and the state goes on at once; the writer
//! syncs once per batch. What must be on disk before it is acknowledged returns an [`Ack`]: a
//! creation (the `Submit` reply waits for it, while the backend request already runs), an exit status
//! (waiters and followers hear of it only once its record is durable), a kill, STOP, CONT or renice
//! (the reply waits). Output is checkpointed in bounded records at quantum boundaries and whenever a
//! process leaves its slot, so a crash loses at most the last quantum of a running process, which is
//! then generated again as a continuation.
//!
//! Compaction is taken at the end of a state update ([`KernelState::after_update`]), from a table
//! that holds the effect of every record queued before, so it can never drop one. A write that fails
//! marks the journal damaged: records fail until a compaction rewrites it whole; one is tried before
//! each creation and, backing off, by itself, which is how the kernel recovers once the disk has
//! room again.

use super::KernelState;
use crate::kernel::journal::record::{
    CreatedRecord, DeadlineRecord, DurableState, ProcessImage, Record, image_records,
    output_records,
};
use crate::kernel::journal::writer::{Ack, Completion, JournalHandle, WriteError};
use crate::kernel::journal::{Journal, JournalError, Recovered};
use crate::kernel::process::{Ask, Process, Spec};
use crate::kernel::state::deadlines::ProcessDeadline;
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
    /// Where a journal damaged in its middle was kept.
    pub damaged_copy: Option<std::path::PathBuf>,
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
    pub fn restore(
        &mut self,
        journal: Journal,
        recovered: Recovered,
    ) -> Result<Restored, JournalError> {
        let mut restored = Restored {
            truncated_bytes: recovered.truncated_bytes,
            damaged_copy: recovered.damaged_copy.clone(),
            ..Default::default()
        };
        let dir = self.config.state_dir.clone();
        let handle = JournalHandle::spawn(journal, self.config.journal_compact_records)
            .map_err(|source| JournalError::Io { path: dir, source })?;
        self.journal = Some(handle);
        self.next_pid = self.next_pid.max(recovered.next_pid);
        self.quotas.restore(recovered.quota_used.clone());
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
                // A pipe's reader still waits for its input, not for a slot.
                _ if p.state == ProcessState::Blocked => restored.waiting += 1,
                DurableState::Waiting | DurableState::Running => {
                    restored.waiting += 1;
                    order.push((image.created.enqueued_unix_ms, pid));
                }
            }
            if let Some(d) = p.deadline.filter(|_| image.state != DurableState::Zombie) {
                self.deadlines.insert(pid, d.at_ms);
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
        self.restore_pipes();
        self.restore_syscalls();
        self.compact();
        Ok(restored)
    }

    /// Queues a record for the journal, with nothing waiting for it.
    pub(super) fn record(&mut self, record: Record) {
        if let Some(journal) = self.journal.as_mut() {
            journal.append(record, None);
        }
    }

    /// Queues a record; `then` runs once it is on disk or known not to be (at once without a journal).
    pub(super) fn record_then(
        &mut self,
        record: Record,
        then: impl FnOnce(Result<(), WriteError>) + Send + 'static,
    ) {
        match self.journal.as_mut() {
            Some(journal) => journal.append(record, Some(Box::new(then) as Completion)),
            None => then(Ok(())),
        }
    }

    /// Queues a record and returns its acknowledgement.
    pub(super) fn record_acked(&mut self, record: Record) -> Ack {
        if self.journal.is_none() {
            return Ack::done();
        }
        let (ack, resolve) = Ack::pending();
        self.record_then(record, resolve);
        ack
    }

    /// Queues the output `pid` produced since its last checkpoint, in bounded records.
    pub(super) fn checkpoint(&mut self, pid: Pid) {
        let Some(p) = self.table.get_mut(&pid) else {
            return;
        };
        if p.checkpointed >= p.output.len() {
            return;
        }
        let records = output_records(
            pid,
            p.checkpointed as u64,
            &p.output[p.checkpointed..],
            p.tokens_used,
            p.prompt_tokens,
        );
        p.checkpointed = p.output.len();
        for record in records {
            self.record(record);
        }
    }

    /// Records where `pid` stands now (after a start, switch, stop or continue), with its output.
    pub(super) fn record_state(&mut self, pid: Pid) -> Ack {
        self.checkpoint(pid);
        let Some(p) = self.table.get(&pid) else {
            return Ack::done();
        };
        let record = Record::State {
            pid,
            state: durable_state(p.state, p.run.is_some()),
            enqueued_unix_ms: p.enqueued_ms,
            context_switches: p.context_switches,
            cpu_ms: p.cpu_ms,
        };
        self.record_acked(record)
    }

    /// Queues the creation of a new process. A damaged journal is rewritten first (from the table
    /// as it is, without the new process), so space returning on the disk is noticed by the next
    /// creation; if that fails too, so does the creation's acknowledgement.
    pub(super) fn record_creation(
        &mut self,
        pid: Pid,
        spec: &Spec,
        ask: &Ask,
        nice: i8,
        now_ms: u64,
    ) -> Ack {
        if self
            .journal
            .as_ref()
            .is_some_and(|j| j.is_damaged() && !j.is_compacting())
        {
            self.compact();
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
        let mut records = vec![record];
        if *ask != Ask::default() {
            records.push(Record::Asked {
                pid,
                ask: ask.clone(),
            });
        }
        if let Some(d) = ask.deadline {
            let deadline = DeadlineRecord {
                at_ms: now_ms.saturating_add(d.within_ms),
                within_ms: d.within_ms,
                soft: d.soft,
            };
            records.push(Record::Deadline { pid, deadline });
        }
        // Records are written in order: the creation is durable once the last of its records is.
        let Some(last) = records.pop() else {
            return Ack::done();
        };
        for record in records {
            self.record(record);
        }
        self.record_acked(last)
    }

    /// The failure a submitter sees when its process's creation could not be made durable.
    pub fn creation_failure(&self, error: &str) -> Failure {
        let dir = self.config.state_dir.display();
        Failure::new(
            FailureKind::Unavailable,
            format!(
                "cannot record new processes in {dir} ({error}); the disk may be full or the \
                 directory not writable; the process was not created"
            ),
        )
    }

    /// Compacts when the journal asks for it. Runs at the end of every state update, so the snapshot
    /// holds the effect of every record queued so far.
    pub fn after_update(&mut self) {
        let live = self.table.len();
        if self
            .journal
            .as_mut()
            .is_some_and(|j| j.wants_compaction(live))
        {
            self.compact();
        }
    }

    /// Queues a rewrite of the journal from the table (every process's image, its output in bounded
    /// records).
    pub fn compact(&mut self) {
        if self.journal.is_none() {
            return;
        }
        let mut records = Vec::with_capacity(self.table.len());
        for p in self.table.values() {
            records.extend(image_records(self.image(p)));
        }
        records.extend(self.quota_records());
        let next_pid = self.next_pid;
        for p in self.table.values_mut() {
            p.checkpointed = p.output.len();
        }
        if let Some(journal) = self.journal.as_mut() {
            journal.compact(records, next_pid);
        }
    }

    /// Takes the journal out of the state (shutdown): the caller closes it, which writes what is
    /// queued and releases the state directory.
    pub fn take_journal(&mut self) -> Option<JournalHandle> {
        self.journal.take()
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
            ask: Box::new(p.ask.clone()),
            link: self.link_record(p.pid).map(Box::new),
            deadline: p.deadline.map(|d| {
                Box::new(DeadlineRecord {
                    at_ms: d.at_ms,
                    within_ms: d.within_ms,
                    soft: d.soft,
                })
            }),
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
    let mut p =
        Process::new(c.pid, spec, c.nice, c.enqueued_unix_ms).with_ask((*image.ask).clone());
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
    if let Some(link) = &image.link {
        p.link = super::pipes::Link::from_record(link);
        if p.link.blocked && p.state == ProcessState::Waiting {
            p.state = ProcessState::Blocked;
        }
    }
    p.deadline = image.deadline.as_deref().map(|d| ProcessDeadline {
        at_ms: d.at_ms,
        within_ms: d.within_ms,
        soft: d.soft,
        passed: false,
    });
    p
}
