//! The decision at a quantum boundary: finish a process that was sent TERM, or give the slot to a
//! better waiting process. Only the lowest-ranked running process yields (the others keep their
//! slots and their single streams), and a waiting process already promised a slot that is being
//! given up is not counted twice. The cost is O(cpus + log n) per boundary, whatever the queue length.

use super::KernelState;
use crate::kernel::process::AtBoundary;
use crate::proto::{Pid, Signal};

impl KernelState {
    /// Returns whether the run of `pid`, at a quantum boundary, goes on.
    pub(super) fn quantum_boundary(&mut self, pid: Pid) -> bool {
        let Some(p) = self.table.get(&pid) else {
            return false;
        };
        if p.at_boundary == AtBoundary::Terminate {
            self.kill(pid, Signal::Term);
            return false;
        }
        let now = self.now_ms();
        let me = self.scheduler.rank(&self.candidate_at(p, now));
        if !self
            .scheduler
            .yields_to_waiting(me, self.slots_being_released())
            || self.another_runs_lower(pid, me, now)
        {
            return true;
        }
        if let Some(run) = self.table.get_mut(&pid).and_then(|p| p.run.as_mut()) {
            run.ending = true;
            run.cancel.cancel();
        }
        false
    }

    /// Slots still held by runs the kernel has already ended: each goes to a waiting process soon.
    fn slots_being_released(&self) -> usize {
        self.slots
            .iter()
            .flatten()
            .filter(|pid| {
                self.table
                    .get(pid)
                    .and_then(|p| p.run.as_ref())
                    .is_some_and(|r| r.ending)
            })
            .count()
    }

    /// Whether another running process (not already leaving) ranks below `rank` now: it yields first,
    /// at its own boundary. Ties make `pid` the one to yield.
    fn another_runs_lower(&self, pid: Pid, rank: i64, now: u64) -> bool {
        self.slots
            .iter()
            .flatten()
            .filter(|other| **other != pid)
            .filter_map(|other| self.table.get(other))
            .filter(|p| p.run.as_ref().is_some_and(|r| !r.ending))
            .any(|p| self.scheduler.rank(&self.candidate_at(p, now)) < rank)
    }
}
