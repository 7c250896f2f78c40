//! The `ps` view of the process table: each row with its effective priority, and for a waiting process
//! its place in the run queue and an estimate of when it gets a slot.

use super::KernelState;
use crate::kernel::process::Process;
use crate::proto::{Pid, ProcessInfo, ProcessState};
use std::collections::HashMap;

impl KernelState {
    /// The `ps` row of `pid` as `uid` sees it. O(queue) for its queue position.
    pub fn stat(&self, pid: Pid, uid: u32) -> Option<ProcessInfo> {
        let p = self.table.get(&pid)?;
        let now = self.now_ms();
        let position = (p.state == ProcessState::Waiting)
            .then(|| self.scheduler.queue_order().position(|q| q == pid))
            .flatten()
            .map(|i| i as u32 + 1);
        Some(self.row(p, uid, position, now))
    }

    /// The `ps` rows visible to `uid`. O(n) in the table (it lists it), plus one pass over the queue.
    pub fn list(&self, uid: u32, all_users: bool) -> Vec<ProcessInfo> {
        let now = self.now_ms();
        let positions: HashMap<Pid, u32> = self
            .scheduler
            .queue_order()
            .enumerate()
            .map(|(i, pid)| (pid, i as u32 + 1))
            .collect();
        self.table
            .values()
            .filter(|p| all_users || uid == 0 || p.spec.uid == uid)
            .map(|p| self.row(p, uid, positions.get(&p.pid).copied(), now))
            .collect()
    }

    /// One `ps` row: `position` is its place in the run queue, if it waits there.
    fn row(&self, p: &Process, uid: u32, position: Option<u32>, now: u64) -> ProcessInfo {
        let c = if p.state == ProcessState::Waiting {
            self.candidate(p)
        } else {
            self.candidate_at(p, now)
        };
        let priority = self.scheduler.display_priority(&c, now);
        let readable = uid == 0 || p.spec.uid == uid;
        let mut info = p.info(priority, position, readable);
        info.eta_ms = position.and_then(|q| self.rates.eta_ms(q, self.config.cpus));
        info.note = p.note_at(now);
        info
    }
}
