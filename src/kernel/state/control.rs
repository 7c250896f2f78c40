//! Changes asked of the state from outside a run: STOP and CONT, renice, a new policy or a new
//! config. Each re-ranks what it must and records what it changed in the journal.

use super::{BackendCircuit, KernelState};
use crate::config::KernelConfig;
use crate::kernel::journal::record::Record;
use crate::kernel::scheduler::{Candidate, Policy};
use crate::proto::{Pid, ProcessState, Response};

impl KernelState {
    /// Takes a process off its slot at once, or off the queue (STOP): it holds nothing afterwards and
    /// keeps its output. The slot goes to the next process as soon as the run task lets go of it.
    pub fn stop(&mut self, pid: Pid) {
        self.scheduler.retire(pid);
        let Some(p) = self.table.get_mut(&pid) else {
            return;
        };
        if let Some(run) = &mut p.run {
            run.ending = true;
            run.cancel.cancel();
        }
        p.state = ProcessState::Stopped;
        p.broadcast(Ok(Response::Stopped(pid)));
        self.record_state(pid);
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
        if p.run.is_some() {
            // Its stopped run has not let go of the slot yet; it queues when it does.
            p.state = ProcessState::Waiting;
            return;
        }
        self.enqueue(pid);
        self.record_state(pid);
    }

    /// Changes niceness. A waiting process is re-ranked now (keeping the credit of its wait); a
    /// running one is weighed with the new nice at its next quantum boundary.
    pub fn renice(&mut self, pid: Pid, nice: i8) -> Option<i8> {
        let p = self.table.get_mut(&pid)?;
        let old = std::mem::replace(&mut p.nice, nice);
        if p.state == ProcessState::Waiting && p.run.is_none() {
            let c = self.candidate(&self.table[&pid]);
            self.scheduler.enqueue(&c);
        }
        let _ = self.record(Record::Reniced { pid, nice }, true);
        Some(old)
    }

    /// Switches the scheduling policy: waiting processes are re-ranked now, running ones are weighed
    /// by the new policy at their next quantum boundary.
    pub fn set_policy(&mut self, policy: Box<dyn Policy>) {
        let waiting = self.waiting_candidates();
        self.config.policy = policy.kind();
        self.scheduler.replace_policy(policy, &waiting);
    }

    /// The waiting processes as the scheduler sees them, in run order (for re-ranking them all).
    fn waiting_candidates(&self) -> Vec<Candidate> {
        self.scheduler
            .queue_order()
            .filter_map(|pid| self.table.get(&pid))
            .map(|p| self.candidate(p))
            .collect()
    }

    /// Takes a new config, and a new policy if given, at run time: waiting processes are ranked again
    /// under them in their queue order; a running process meets them at its next quantum boundary.
    pub fn reconfigure(&mut self, config: KernelConfig, policy: Option<Box<dyn Policy>>) {
        if config.backend_url != self.config.backend_url {
            // A different backend: nothing is known about it yet, so try it at once.
            self.circuit = BackendCircuit::default();
        }
        self.config = config;
        let waiting = self.waiting_candidates();
        match policy {
            Some(policy) => self.scheduler.replace_policy(policy, &waiting),
            None => waiting.iter().for_each(|c| self.scheduler.enqueue(c)),
        }
    }
}
