//! The scheduler: a run queue ordered by a policy's rank, and the decision of who runs next and who
//! gives up a slot. A policy ranks a process once, when it enters the queue; aging is expressed in that
//! rank (see [`priority`]), so picking the next process is a pop from an ordered set, O(log n), however
//! long the queue. Policies plug in through [`Policy`]; the queue and the preemption rule stay the same.

pub mod priority;

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
    /// When it entered the queue, kernel-clock milliseconds.
    pub enqueued_ms: u64,
    pub tokens_used: u32,
}

/// A scheduling policy. Ranks are compared within one policy only; higher runs first.
pub trait Policy: Send {
    fn name(&self) -> &'static str;
    /// The rank of a process entering the run queue. It may depend on the time of entry but not on
    /// the time of the pick, which is what keeps the pick O(log n).
    fn rank(&mut self, c: &Candidate) -> i64;
    /// The priority `ps` shows (higher runs first) for a process of this rank at `now_ms`.
    fn display_priority(&self, c: &Candidate, now_ms: u64) -> i32;
    /// A running process generated `tokens` more.
    fn charge(&mut self, _c: &Candidate, _tokens: u32) {}
}

/// Ordered key: rank descending, then arrival order.
type Key = (Reverse<i64>, u64);

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
        self.remove(pid);
        let key = (Reverse(rank), self.next_seq);
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
        self.order
            .first_key_value()
            .map(|((Reverse(rank), _), pid)| (*pid, *rank))
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
    policy: Box<dyn Policy>,
}

impl Scheduler {
    pub fn new(policy: Box<dyn Policy>) -> Scheduler {
        Scheduler {
            queue: RunQueue::default(),
            policy,
        }
    }

    pub fn policy_name(&self) -> &'static str {
        self.policy.name()
    }

    /// Switches policy; the caller ranks the waiting processes again ([`Scheduler::enqueue`]).
    pub fn replace_policy(&mut self, policy: Box<dyn Policy>) {
        self.policy = policy;
    }

    pub fn enqueue(&mut self, c: &Candidate) {
        let rank = self.policy.rank(c);
        self.queue.push(c.pid, rank);
    }

    pub fn remove(&mut self, pid: Pid) -> bool {
        self.queue.remove(pid)
    }

    pub fn pick(&mut self) -> Option<Pid> {
        self.queue.pop()
    }

    pub fn waiting(&self) -> usize {
        self.queue.len()
    }

    pub fn queue_order(&self) -> impl Iterator<Item = Pid> + '_ {
        self.queue.iter()
    }

    /// Whether the best waiting process should take the slot of `running`, which has reached a
    /// quantum boundary: it would rank below that process if it re-entered the queue now.
    pub fn should_preempt(&mut self, running: &Candidate) -> bool {
        let Some((_, best)) = self.queue.peek() else {
            return false;
        };
        self.policy.rank(running) < best
    }

    pub fn charge(&mut self, c: &Candidate, tokens: u32) {
        self.policy.charge(c, tokens);
    }

    pub fn display_priority(&self, c: &Candidate, now_ms: u64) -> i32 {
        self.policy.display_priority(c, now_ms)
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
}
