//! Changes asked of the state from outside a run: signals (STOP and CONT among them), renice, a new
//! policy or a new config. Each re-ranks what it must and records what it changed in the journal,
//! returning when that is durable where a client waits for it.

use super::{BackendCircuit, KernelState};
use crate::config::KernelConfig;
use crate::kernel::journal::record::Record;
use crate::kernel::journal::writer::Ack;
use crate::kernel::process::AtBoundary;
use crate::kernel::scheduler::{Candidate, Policy};
use crate::proto::{ExitStatus, Failure, Pid, ProcessState, Reniced, Response, Signal};
use tokio::sync::oneshot;

/// What `wait` gets.
pub enum Collect {
    /// The process had ended: its status, reaped once the acknowledgement resolves.
    Now(ExitStatus, Ack),
    /// It is still alive: its status comes on this channel once its exit is durable.
    Later(oneshot::Receiver<ExitStatus>),
}

impl KernelState {
    /// Delivers `signal` to `pid` on behalf of `uid` (`kill`): KILL and INT end it now, TERM and HUP
    /// at its next quantum boundary (at once if it is not running), STOP and TSTP take it off its
    /// slot, CONT makes it runnable. Every ending keeps the output produced so far. Returns the
    /// process's state afterwards and when that is durable.
    pub fn signal(
        &mut self,
        uid: u32,
        pid: Pid,
        signal: Signal,
    ) -> Result<(ProcessState, Ack), Failure> {
        let state = self.owned_mut(pid, uid)?.state;
        if state == ProcessState::Zombie {
            // Like kill(2) on a zombie: nothing left to do, not an error.
            return Ok((state, Ack::done()));
        }
        let ack = match signal {
            Signal::Kill | Signal::Int | Signal::Pipe | Signal::Xcpu => {
                self.finish_acked(pid, ExitStatus::Killed { signal }, None)
            }
            Signal::Term | Signal::Hup if state == ProcessState::Running => {
                if let Some(p) = self.table.get_mut(&pid) {
                    p.at_boundary = AtBoundary::Terminate;
                }
                Ack::done()
            }
            Signal::Term | Signal::Hup => {
                self.finish_acked(pid, ExitStatus::Killed { signal }, None)
            }
            Signal::Stop | Signal::Tstp => self.stop(pid),
            Signal::Cont => self.resume(pid),
        };
        self.audit(uid, "signalled", pid, &format!("SIG{signal}"));
        let after = self.get(pid).map_or(ProcessState::Zombie, |p| p.state);
        Ok((after, ack))
    }

    /// Takes a process off its slot at once, or off the queue (STOP): it holds nothing afterwards and
    /// keeps its output. The slot goes to the next process as soon as the run task lets go of it.
    pub fn stop(&mut self, pid: Pid) -> Ack {
        self.scheduler.retire(pid);
        let Some(p) = self.table.get_mut(&pid) else {
            return Ack::done();
        };
        if let Some(run) = &mut p.run {
            run.ending = true;
            run.cancel.cancel();
        }
        p.state = ProcessState::Stopped;
        p.broadcast(Ok(Response::Stopped(pid)));
        self.record_state(pid)
    }

    /// Makes a stopped process runnable again (CONT).
    pub fn resume(&mut self, pid: Pid) -> Ack {
        let Some(p) = self.table.get_mut(&pid) else {
            return Ack::done();
        };
        if p.state != ProcessState::Stopped {
            return Ack::done();
        }
        p.broadcast(Ok(Response::Continued(pid)));
        if let Some(ack) = self.resume_in_syscall(pid) {
            return ack;
        }
        let Some(p) = self.table.get_mut(&pid) else {
            return Ack::done();
        };
        if p.link.blocked {
            // Still waiting for its input: it goes back to waiting for that, not for a slot.
            p.state = ProcessState::Blocked;
            return self.record_state(pid);
        }
        if p.run.is_some() {
            // Its stopped run has not let go of the slot yet; it queues when it does (and is
            // recorded then). Until then a crash brings it back waiting, which is what CONT asked.
            p.state = ProcessState::Waiting;
            return Ack::done();
        }
        self.enqueue(pid);
        self.record_state(pid)
    }

    /// Collects the exit status of `pid` for `uid` (`wait`): a zombie is reaped now (answer once that
    /// is durable); a live process gets the waiter registered, to be told when its exit is durable.
    pub fn collect(&mut self, uid: u32, pid: Pid) -> Result<Collect, Failure> {
        let p = self.owned_mut(pid, uid)?;
        if p.state == ProcessState::Zombie && !p.collected {
            let status = p.exit.clone().unwrap_or(ExitStatus::Finished);
            p.collected = true;
            let ack = self.reap_acked(pid).map_or_else(Ack::done, |(_, ack)| ack);
            return Ok(Collect::Now(status, ack));
        }
        // Waiters whose clients left are forgotten first, so repeated waits on a process that never
        // ends (a stopped one) cannot pile them up.
        p.forget_departed();
        let (tx, rx) = oneshot::channel();
        p.waiters.push(tx);
        Ok(Collect::Later(rx))
    }

    /// Changes the niceness of `pid` on behalf of `uid` (`renice`; the caller has checked the value
    /// and the privilege it needs). Returns the old and new nice and when the change is durable.
    pub fn renice_as(&mut self, uid: u32, pid: Pid, nice: i8) -> Result<(Reniced, Ack), Failure> {
        self.owned_mut(pid, uid)?;
        let (old_nice, ack) = self.renice(pid, nice).unwrap_or((nice, Ack::done()));
        self.audit(uid, "reniced", pid, &format!("{old_nice}->{nice}"));
        let reniced = Reniced {
            pid,
            old_nice,
            new_nice: nice,
        };
        Ok((reniced, ack))
    }

    /// Changes niceness. A waiting process is re-ranked now (keeping the credit of its wait); a
    /// running one is weighed with the new nice at its next quantum boundary.
    pub fn renice(&mut self, pid: Pid, nice: i8) -> Option<(i8, Ack)> {
        let p = self.table.get_mut(&pid)?;
        let old = std::mem::replace(&mut p.nice, nice);
        if p.state == ProcessState::Waiting && p.run.is_none() {
            let c = self.candidate(&self.table[&pid]);
            self.scheduler.enqueue(&c);
        }
        let ack = self.record_acked(Record::Reniced { pid, nice });
        Some((old, ack))
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
