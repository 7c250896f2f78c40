//! `rr`: round robin by quantum. Every process ranks the same, so the queue is first come, first
//! served, and a running process gives up its slot at every quantum boundary where anyone waits,
//! going to the back. It optimizes for evenness of response: N processes on one slot each advance a
//! quantum in turn, whatever their type or nice. Pick it when all work is alike (a batch of similar
//! jobs, a demo) or to compare against the smarter policies. With a quantum larger than any answer it
//! is plain FIFO, as llama-server itself schedules. Starvation-free: a waiting process has at most the
//! queue ahead of it, and every running process yields within one quantum.

use super::{Candidate, Policy};
use crate::config::PolicyKind;

pub struct RoundRobinPolicy;

impl Policy for RoundRobinPolicy {
    fn kind(&self) -> PolicyKind {
        PolicyKind::RoundRobin
    }

    fn rank(&self, _c: &Candidate) -> i64 {
        0
    }

    fn display_priority(&self, _c: &Candidate, _now_ms: u64) -> i32 {
        0
    }

    fn takes_turns_each_quantum(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::scheduler::Scheduler;
    use crate::proto::Pid;

    #[test]
    fn the_queue_is_first_come_first_served_whatever_the_type_or_nice() {
        let mut s = Scheduler::new(Box::new(RoundRobinPolicy));
        for (pid, base, nice) in [(1, 1, 19), (2, 5, -20), (3, 3, 0)] {
            s.enqueue(&Candidate {
                pid: Pid(pid),
                uid: 0,
                base_priority: base,
                nice,
                enqueued_ms: pid * 10,
                tokens_used: 0,
                interactive: false,
                deadline_ms: None,
            });
        }
        let order: Vec<_> = std::iter::from_fn(|| s.pick()).collect();
        assert_eq!(order, vec![Pid(1), Pid(2), Pid(3)]);
    }
}
