//! What the event bus ([`crate::kernel::events`]) reads of the state after each update: a small copy of
//! each process's observable fields to compare with the last one, and the per-process counters of a
//! periodic sample. Reading only: no transition lives here.

use super::KernelState;
use crate::proto::{Pid, ProcessState, ProcessTick, ProcessType};
use std::time::Instant;

/// The fields of a process whose changes are events or metrics.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Observed {
    pub pid: Pid,
    pub uid: u32,
    pub process_type: ProcessType,
    pub state: ProcessState,
    pub slot: Option<u32>,
    pub nice: i8,
    pub tokens_used: u32,
    pub prompt_tokens: u32,
    pub context_switches: u32,
    /// Kernel-clock milliseconds when it last entered the run queue.
    pub enqueued_ms: u64,
    pub created: Instant,
}

impl KernelState {
    /// Every process's observable fields, in pid order. O(n) in the table.
    pub fn observe(&self) -> impl Iterator<Item = Observed> + '_ {
        self.table.values().map(|p| Observed {
            pid: p.pid,
            uid: p.spec.uid,
            process_type: p.spec.process_type,
            state: p.state,
            slot: p.run.as_ref().map(|r| r.slot),
            nice: p.nice,
            tokens_used: p.tokens_used,
            prompt_tokens: p.prompt_tokens,
            context_switches: p.context_switches,
            enqueued_ms: p.enqueued_ms,
            created: p.created,
        })
    }

    /// The journal's synced batches and the nanoseconds spent on them, when there is a journal.
    pub fn journal_syncs(&self) -> Option<(u64, u64)> {
        self.journal.as_ref().map(|j| (j.batches(), j.sync_nanos()))
    }

    /// The process on each slot, by slot number.
    pub fn slot_holders(&self) -> Vec<Option<Pid>> {
        self.slots.clone()
    }

    /// The counters of each live (not ended) process with its owner, for a sample; `tokens_per_s`
    /// is left for the caller, which knows the previous sample.
    pub fn ticks(&self) -> Vec<(u32, ProcessTick)> {
        let now = self.now_ms();
        self.table
            .values()
            .filter(|p| p.state != ProcessState::Zombie)
            .map(|p| {
                let c = if p.state == ProcessState::Waiting {
                    self.candidate(p)
                } else {
                    self.candidate_at(p, now)
                };
                let tick = ProcessTick {
                    pid: p.pid,
                    priority: self.scheduler.display_priority(&c, now),
                    tokens_used: p.tokens_used,
                    prompt_tokens: p.prompt_tokens,
                    cpu_ms: p.cpu_ms_now(),
                    tokens_per_s: 0.0,
                };
                (p.spec.uid, tick)
            })
            .collect()
    }
}
