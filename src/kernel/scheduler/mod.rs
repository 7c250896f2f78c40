//! The scheduler: a run queue ordered by a policy's rank, and the decision of who runs next and who
//! gives up a slot. A policy ranks a process once, when it enters the queue; anything that changes
//! with waiting time (aging, boosts) is folded into that rank, so picking the next process is a pop
//! from an ordered set, O(log n), however long the queue. Policies plug in through [`Policy`]: the
//! queue and the preemption rule stay the same for all of them.
//!
//! The preemption rules, for every policy (applied in [`crate::kernel::state`]): a waiting process of
//! a strictly more urgent [`Policy::class`] takes a slot from less urgent work at once; among the rest,
//! at a quantum boundary the running process is ranked as if it entered the queue a little while ago
//! ([`Policy::rank_at_boundary`]) and gives up the slot when the best waiting one outranks that. The
//! waiting processes of an interactive type are also kept in a queue of their own, so the slots kept
//! for interactive work (see [`crate::config::SchedulerSettings`]) can be filled without walking past background work.
//!
//! Deadlines break ties under every policy: among waiting processes of equal rank, the one with the
//! earliest deadline runs first (those without one after those with one, each in arrival order).
//! The `edf` policy goes further and orders each priority level by deadline.

pub mod edf;
pub mod eta;
pub mod fair;
pub mod mlfq;
pub mod priority;
pub mod rr;
#[cfg(test)]
mod simulation;
pub mod switches;

use crate::config::{KernelConfig, PolicyKind};
use crate::proto::Pid;
use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};

/// What a policy knows of a process when ranking it.
#[derive(Clone, Copy, Debug)]
pub struct Candidate {
    pub pid: Pid,
    pub uid: u32,
    pub base_priority: u8,
    pub nice: i8,
    /// When it entered the queue, kernel-clock milliseconds; "now" for a running process weighed at a
    /// quantum boundary.
    pub enqueued_ms: u64,
    pub tokens_used: u32,
    /// Of an interactive type (see [`crate::config::SchedulerSettings`]): may use the slots kept from background work.
    pub interactive: bool,
    /// Kernel-clock milliseconds it must be done by, while that deadline has not passed.
    pub deadline_ms: Option<u64>,
}

impl Candidate {
    /// The same process weighed as if it entered the queue at `ms`.
    pub fn entering_at(&self, ms: u64) -> Candidate {
        Candidate {
            enqueued_ms: ms,
            ..*self
        }
    }
}

/// A scheduling policy. Ranks are compared within one policy only; higher runs first.
pub trait Policy: Send {
    /// Which policy this is.
    fn kind(&self) -> PolicyKind;
    /// Its name, as `sched` and `ps` show it.
    fn name(&self) -> &'static str {
        self.kind().name()
    }
    /// The rank of a process entering the run queue at `c.enqueued_ms`. It may depend on the time of
    /// entry but not on the time of the pick, which is what keeps the pick O(log n).
    fn rank(&self, c: &Candidate) -> i64;
    /// The priority `ps` shows (higher runs first) for this process at `now_ms`.
    fn display_priority(&self, c: &Candidate, now_ms: u64) -> i32;
    /// The process becomes runnable (created, continued, or re-queued after a switch).
    fn admit(&mut self, _c: &Candidate) {}
    /// A running process generated `tokens` more at `now_ms`.
    fn charge(&mut self, _c: &Candidate, _tokens: u32, _now_ms: u64) {}
    /// The process is no longer runnable (stopped or ended): forget what the policy kept of it.
    fn retire(&mut self, _pid: Pid) {}
    /// How urgent the process's kind of work is, whatever its waiting time: a waiting process of a
    /// strictly higher class switches out a running one at once instead of at a quantum boundary.
    /// Policies without classes keep the default: every process is of one class.
    fn class(&self, _c: &Candidate) -> i64 {
        0
    }
    /// The rank of a running process at a quantum boundary at `now_ms`, for the comparison with the
    /// waiting ones: by default as if it entered the queue now. A policy whose ranks grow with waiting
    /// time gives it `hold_ms` of credit, so a waiting process of its class displaces it only after
    /// waiting that long (the margin that keeps aging from switching equals back and forth).
    fn rank_at_boundary(&self, c: &Candidate, now_ms: u64, _hold_ms: u64) -> i64 {
        self.rank(&c.entering_at(now_ms))
    }
    /// Whether running processes take turns at every quantum boundary by definition (round robin):
    /// then a resumed process is not protected from being switched out again.
    fn takes_turns_each_quantum(&self) -> bool {
        false
    }
}

/// Builds the policy `kind`, with its settings from `config` (the quantum, aging).
pub fn make_policy(kind: PolicyKind, config: &KernelConfig) -> Box<dyn Policy> {
    let quantum = config.quantum_tokens;
    match kind {
        PolicyKind::Priority => {
            Box::new(priority::PriorityPolicy::new(config.aging_points_per_sec))
        }
        PolicyKind::RoundRobin => Box::new(rr::RoundRobinPolicy),
        PolicyKind::Fair => Box::new(fair::FairPolicy::new(quantum)),
        PolicyKind::Mlfq => Box::new(mlfq::MlfqPolicy::new(quantum, mlfq::BOOST_PERIOD_MS)),
        PolicyKind::Edf => Box::new(edf::EdfPolicy::new(config.aging_points_per_sec)),
    }
}

/// Ordered key: rank descending, then the earliest deadline (`u64::MAX` for none), then arrival order.
type Key = (Reverse<i64>, u64, u64);

/// Waiting processes in the order they will run.
#[derive(Default)]
pub struct RunQueue {
    order: BTreeMap<Key, Pid>,
    keys: HashMap<Pid, Key>,
    next_seq: u64,
}

impl RunQueue {
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub fn push(&mut self, pid: Pid, rank: i64) {
        self.push_with_deadline(pid, rank, None);
    }

    /// Queues `pid` at `rank`, before others of the same rank with a later deadline or none.
    pub fn push_with_deadline(&mut self, pid: Pid, rank: i64, deadline_ms: Option<u64>) {
        self.remove(pid);
        let key = (
            Reverse(rank),
            deadline_ms.unwrap_or(u64::MAX),
            self.next_seq,
        );
        self.next_seq += 1;
        self.order.insert(key, pid);
        self.keys.insert(pid, key);
    }

    pub fn remove(&mut self, pid: Pid) -> bool {
        match self.keys.remove(&pid) {
            Some(key) => self.order.remove(&key).is_some(),
            None => false,
        }
    }

    /// The best waiting process and its rank.
    pub fn peek(&self) -> Option<(Pid, i64)> {
        self.nth(0)
    }

    /// The waiting process `n` places behind the best, and its rank: O(n + log len).
    pub fn nth(&self, n: usize) -> Option<(Pid, i64)> {
        self.order
            .iter()
            .nth(n)
            .map(|((Reverse(rank), _, _), pid)| (*pid, *rank))
    }

    pub fn pop(&mut self) -> Option<Pid> {
        let (_, pid) = self.order.pop_first()?;
        self.keys.remove(&pid);
        Some(pid)
    }

    /// Waiting pids in run order.
    pub fn iter(&self) -> impl Iterator<Item = Pid> + '_ {
        self.order.values().copied()
    }
}

/// The run queue and the policy that orders it.
pub struct Scheduler {
    queue: RunQueue,
    /// The interactive processes of `queue`, in the same order.
    interactive: RunQueue,
    policy: Box<dyn Policy>,
}

impl Scheduler {
    pub fn new(policy: Box<dyn Policy>) -> Scheduler {
        Scheduler {
            queue: RunQueue::default(),
            interactive: RunQueue::default(),
            policy,
        }
    }

    pub fn policy_name(&self) -> &'static str {
        self.policy.name()
    }

    /// Puts a process on the queue (or moves it, when it is there already), ranked as of
    /// `c.enqueued_ms`.
    pub fn enqueue(&mut self, c: &Candidate) {
        self.policy.admit(c);
        let rank = self.policy.rank(c);
        self.queue.push_with_deadline(c.pid, rank, c.deadline_ms);
        if c.interactive {
            self.interactive
                .push_with_deadline(c.pid, rank, c.deadline_ms);
        } else {
            self.interactive.remove(c.pid);
        }
    }

    /// The process stops being runnable (STOP, or its end): off the queue and out of the policy.
    pub fn retire(&mut self, pid: Pid) {
        self.queue.remove(pid);
        self.interactive.remove(pid);
        self.policy.retire(pid);
    }

    /// The next process to run, off the queue: O(log n).
    pub fn pick(&mut self) -> Option<Pid> {
        let pid = self.queue.pop()?;
        self.interactive.remove(pid);
        Some(pid)
    }

    /// The next interactive process to run, off the queue (when background work may not take the
    /// slot): O(log n).
    pub fn pick_interactive(&mut self) -> Option<Pid> {
        let pid = self.interactive.pop()?;
        self.queue.remove(pid);
        Some(pid)
    }

    /// Takes `pid` off the queue to run it (a process further down the queue than the best, when the
    /// best cannot run on any free slot: another model's pool). Returns whether it was waiting.
    pub fn take(&mut self, pid: Pid) -> bool {
        self.interactive.remove(pid);
        self.queue.remove(pid)
    }

    /// The waiting processes in run order (the interactive ones only, with `interactive_only`).
    pub fn in_order(&self, interactive_only: bool) -> Box<dyn Iterator<Item = Pid> + '_> {
        if interactive_only {
            Box::new(self.interactive.iter())
        } else {
            Box::new(self.queue.iter())
        }
    }

    /// The waiting process `skip` places behind the best (among the interactive ones only, with
    /// `interactive_only`) and its rank: O(skip + log n).
    pub fn nth_waiting(&self, skip: usize, interactive_only: bool) -> Option<(Pid, i64)> {
        if interactive_only {
            self.interactive.nth(skip)
        } else {
            self.queue.nth(skip)
        }
    }

    /// Interactive processes waiting.
    pub fn interactive_waiting(&self) -> usize {
        self.interactive.len()
    }

    /// The class of `c` (see [`Policy::class`]).
    pub fn class(&self, c: &Candidate) -> i64 {
        self.policy.class(c)
    }

    /// The rank of the running `c` at a quantum boundary (see [`Policy::rank_at_boundary`]).
    pub fn rank_at_boundary(&self, c: &Candidate, now_ms: u64, hold_ms: u64) -> i64 {
        self.policy.rank_at_boundary(c, now_ms, hold_ms)
    }

    /// Whether the policy takes turns at every quantum boundary (see [`Policy`]).
    pub fn takes_turns_each_quantum(&self) -> bool {
        self.policy.takes_turns_each_quantum()
    }

    pub fn waiting(&self) -> usize {
        self.queue.len()
    }

    pub fn queue_order(&self) -> impl Iterator<Item = Pid> + '_ {
        self.queue.iter()
    }

    /// The rank `c` would get entering the queue at `c.enqueued_ms`, without entering it.
    pub fn rank(&self, c: &Candidate) -> i64 {
        self.policy.rank(c)
    }

    pub fn charge(&mut self, c: &Candidate, tokens: u32, now_ms: u64) {
        self.policy.charge(c, tokens, now_ms);
    }

    pub fn display_priority(&self, c: &Candidate, now_ms: u64) -> i32 {
        self.policy.display_priority(c, now_ms)
    }

    /// Switches to another policy, re-ranking the waiting processes (given in their current run
    /// order, so ties keep their order). O(n log n), for an administrator's command.
    pub fn replace_policy(&mut self, policy: Box<dyn Policy>, waiting: &[Candidate]) {
        self.policy = policy;
        self.queue = RunQueue::default();
        self.interactive = RunQueue::default();
        for c in waiting {
            self.enqueue(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_queue_pops_highest_rank_first_and_fifo_within_a_rank() {
        let mut q = RunQueue::default();
        q.push(Pid(1), 5);
        q.push(Pid(2), 9);
        q.push(Pid(3), 5);
        assert_eq!(q.nth(1), Some((Pid(1), 5)));
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(order, vec![Pid(2), Pid(1), Pid(3)]);
    }

    #[test]
    fn removing_and_requeueing_moves_a_process() {
        let mut q = RunQueue::default();
        q.push(Pid(1), 1);
        q.push(Pid(2), 2);
        q.push(Pid(1), 3);
        assert_eq!(q.len(), 2);
        assert_eq!(q.peek(), Some((Pid(1), 3)));
        assert!(q.remove(Pid(1)));
        assert!(!q.remove(Pid(1)));
        assert_eq!(q.pop(), Some(Pid(2)));
        assert!(q.is_empty());
    }

    fn c(pid: u64, interactive: bool) -> Candidate {
        Candidate {
            pid: Pid(pid),
            uid: 0,
            base_priority: 1,
            nice: 0,
            enqueued_ms: pid,
            tokens_used: 0,
            interactive,
            deadline_ms: None,
        }
    }

    #[test]
    fn interactive_work_can_be_picked_past_background_work_ahead_of_it() {
        let mut s = Scheduler::new(Box::new(rr::RoundRobinPolicy));
        s.enqueue(&c(1, false));
        s.enqueue(&c(2, true));
        s.enqueue(&c(3, true));
        assert_eq!(s.nth_waiting(0, true), Some((Pid(2), 0)));
        assert_eq!(s.nth_waiting(1, false), Some((Pid(2), 0)));
        assert_eq!(s.interactive_waiting(), 2);
        assert_eq!(s.pick_interactive(), Some(Pid(2)));
        assert_eq!(s.pick(), Some(Pid(1)));
        s.retire(Pid(3));
        assert_eq!(s.interactive_waiting(), 0);
        assert_eq!(s.waiting(), 0);
        assert_eq!(s.pick_interactive(), None);
    }

    #[test]
    fn among_equal_ranks_the_earliest_deadline_runs_first_then_arrival_order() {
        let mut s = Scheduler::new(Box::new(rr::RoundRobinPolicy));
        let with = |pid, deadline_ms| Candidate {
            deadline_ms,
            ..c(pid, false)
        };
        s.enqueue(&with(1, None));
        s.enqueue(&with(2, Some(9000)));
        s.enqueue(&with(3, Some(5000)));
        s.enqueue(&with(4, None));
        let order: Vec<_> = std::iter::from_fn(|| s.pick()).collect();
        assert_eq!(order, vec![Pid(3), Pid(2), Pid(1), Pid(4)]);
    }
}
