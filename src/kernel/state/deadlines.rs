//! Deadlines: "answer me by then". A process created with a deadline carries the kernel-clock time
//! it must be done by; the scheduler sees it (every policy breaks ties by it, `edf` orders each
//! priority level by it) until it passes. Then a hard deadline ends a process still alive with
//! `SIGXCPU` (exit status 152, its output kept, the reason in its note); a soft one only loses its
//! urgency and goes on as any process would.
//!
//! The pending deadlines are kept in an index ordered by time, so the check at the start of every
//! dispatch is O(log n) when nothing is due; the kernel arms one timer for the earliest deadline
//! ([`KernelState::deadline_timer`]) so a deadline passes on time even when nothing else happens.

use super::KernelState;
use super::process::seconds;
use crate::proto::{Deadline, ExitStatus, Pid, ProcessState, Signal};
use std::collections::BTreeSet;

/// A process's deadline, on the kernel clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessDeadline {
    /// Kernel-clock milliseconds it must be done by.
    pub at_ms: u64,
    /// As asked: how long after its creation.
    pub within_ms: u64,
    pub soft: bool,
    /// The deadline has passed (a soft one; a hard one ends the process).
    pub passed: bool,
}

impl ProcessDeadline {
    pub fn new(deadline: Deadline, created_ms: u64) -> ProcessDeadline {
        ProcessDeadline {
            at_ms: created_ms.saturating_add(deadline.within_ms),
            within_ms: deadline.within_ms,
            soft: deadline.soft,
            passed: false,
        }
    }

    /// The deadline the scheduler weighs: none once it has passed.
    pub fn urgent_at(&self) -> Option<u64> {
        (!self.passed).then_some(self.at_ms)
    }

    /// What `ps -l` says of it at `now_ms`: `deadline in 12s`, `soft deadline in 3s`, or `soft
    /// deadline passed 4s ago`.
    pub fn note(&self, now_ms: u64) -> String {
        let kind = if self.soft {
            "soft deadline"
        } else {
            "deadline"
        };
        if now_ms < self.at_ms && !self.passed {
            format!("{kind} in {}", seconds(self.at_ms - now_ms))
        } else {
            format!(
                "{kind} passed {} ago",
                seconds(now_ms.saturating_sub(self.at_ms))
            )
        }
    }
}

/// The note of a process ended at its hard deadline.
pub fn deadline_note(within_ms: u64) -> String {
    format!(
        "deadline of {} passed before the answer was done (SIGXCPU); output so far kept",
        seconds(within_ms)
    )
}

/// The deadlines not yet passed, in time order, and the timer armed for them.
#[derive(Debug, Default)]
pub struct DeadlineIndex {
    pending: BTreeSet<(u64, Pid)>,
    /// When the armed timer fires, if one is armed and has not fired yet.
    armed_at: Option<u64>,
}

impl DeadlineIndex {
    pub fn insert(&mut self, pid: Pid, at_ms: u64) {
        self.pending.insert((at_ms, pid));
    }

    pub fn remove(&mut self, pid: Pid, at_ms: u64) {
        self.pending.remove(&(at_ms, pid));
    }

    /// Takes every deadline due at `now_ms`.
    fn take_due(&mut self, now_ms: u64) -> Vec<Pid> {
        let mut due = Vec::new();
        while let Some(&(at, pid)) = self.pending.first() {
            if at > now_ms {
                break;
            }
            self.pending.pop_first();
            due.push(pid);
        }
        due
    }

    /// How long until a new timer must fire, when the earliest deadline has none armed before it.
    fn arm(&mut self, now_ms: u64) -> Option<u64> {
        let &(next, _) = self.pending.first()?;
        if self
            .armed_at
            .is_some_and(|armed| armed > now_ms && armed <= next)
        {
            return None;
        }
        self.armed_at = Some(next);
        Some(next.saturating_sub(now_ms))
    }
}

impl KernelState {
    /// Gives the just-created `pid` its deadline (if its request asked for one).
    pub(super) fn set_deadline(&mut self, pid: Pid, deadline: Option<Deadline>, now_ms: u64) {
        let Some(p) = self.table.get_mut(&pid) else {
            return;
        };
        p.deadline = deadline.map(|d| ProcessDeadline::new(d, now_ms));
        if let Some(d) = p.deadline {
            self.deadlines.insert(pid, d.at_ms);
        }
    }

    /// Passes every deadline due now: a hard one ends its process with SIGXCPU, a soft one takes its
    /// urgency away (a waiting process is ranked again without it). Called before each dispatch.
    pub(super) fn expire_deadlines(&mut self, now_ms: u64) {
        for pid in self.deadlines.take_due(now_ms) {
            let Some(p) = self.table.get_mut(&pid) else {
                continue;
            };
            let Some(deadline) = p.deadline.as_mut().filter(|d| !d.passed) else {
                continue;
            };
            if p.state == ProcessState::Zombie {
                continue;
            }
            deadline.passed = true;
            let deadline = *deadline;
            let uid = p.spec.uid;
            if !deadline.soft {
                let status = ExitStatus::Killed {
                    signal: Signal::Xcpu,
                };
                self.finish(pid, status, Some(deadline_note(deadline.within_ms)));
                self.audit(uid, "deadline passed", pid, "SIGXCPU");
                continue;
            }
            if p.state == ProcessState::Waiting && p.run.is_none() {
                let c = self.candidate(&self.table[&pid]);
                self.scheduler.enqueue(&c);
            }
        }
    }

    /// Forgets the pending deadline of a process that ended.
    pub(super) fn forget_deadline(&mut self, pid: Pid) {
        if let Some(d) = self.table.get(&pid).and_then(|p| p.deadline) {
            self.deadlines.remove(pid, d.at_ms);
        }
    }

    /// How long until the earliest pending deadline, once per deadline: the caller arms a timer to
    /// dispatch again then, so the deadline passes even if nothing else happens.
    pub fn deadline_timer(&mut self) -> Option<std::time::Duration> {
        let now = self.now_ms();
        self.deadlines
            .arm(now)
            .map(std::time::Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timer_is_armed_once_for_the_earliest_deadline_and_again_after_it_fired() {
        let mut index = DeadlineIndex::default();
        index.insert(Pid(1), 5000);
        assert_eq!(index.arm(1000), Some(4000));
        assert_eq!(index.arm(1500), None, "already armed for it");
        index.insert(Pid(2), 3000);
        assert_eq!(
            index.arm(1500),
            Some(1500),
            "an earlier deadline arms its own"
        );
        assert_eq!(index.take_due(3000), vec![Pid(2)]);
        assert_eq!(index.arm(3000), Some(2000), "the fired timer is replaced");
        assert!(index.take_due(4999).is_empty());
    }

    #[test]
    fn notes_say_the_time_left_or_since_a_soft_deadline_passed() {
        let hard = ProcessDeadline::new(
            Deadline {
                within_ms: 30_000,
                soft: false,
            },
            1000,
        );
        assert_eq!(hard.note(19_000), "deadline in 12s");
        let mut soft = ProcessDeadline { soft: true, ..hard };
        soft.passed = true;
        assert_eq!(soft.note(35_000), "soft deadline passed 4s ago");
        assert_eq!(soft.urgent_at(), None);
        assert_eq!(hard.urgent_at(), Some(31_000));
    }
}
