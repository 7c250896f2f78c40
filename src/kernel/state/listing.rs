//! The `ps` view of the process table: each row with its effective priority, and for a waiting process
//! its place in the run queue and an estimate of when it gets a slot.

use super::KernelState;
use crate::proto::{Pid, ProcessInfo, ProcessState};
use std::collections::HashMap;

impl KernelState {
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
            .map(|p| {
                let c = if p.state == ProcessState::Waiting {
                    self.candidate(p)
                } else {
                    self.candidate_at(p, now)
                };
                let priority = self.scheduler.display_priority(&c, now);
                let readable = uid == 0 || p.spec.uid == uid;
                let position = positions.get(&p.pid).copied();
                let eta_ms = position.and_then(|q| self.rates.eta_ms(q, self.config.cpus));
                let mut info = p.info(priority, position, readable);
                info.eta_ms = eta_ms;
                info
            })
            .collect()
    }
}
