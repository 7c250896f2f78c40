//! `edf`: earliest deadline first within each priority level. Levels are `priority`'s: the type's
//! points shifted by nice, with the same aging, and a waiting process of a higher type switches out a
//! running one at once. Within a level, a deadline counts as a wait: a process ranks as if it had
//! entered the queue `credit` before its deadline, where `credit` is just under one level of aging
//! (9.5 s at the default 2 points/s). So among processes of a level whose deadlines are at most that
//! far ahead, the earliest deadline runs first, and a running one yields at a quantum boundary to a
//! waiting one whose deadline is earlier; a farther deadline counts as entering now (and still breaks
//! ties), and a deadline never lifts a process past a fresh one of a higher level. Because the credit
//! is bounded, aging works as under `priority`: nothing starves. It optimizes for meeting deadlines:
//! on one slot, if any order meets every deadline of a level, the earliest-deadline order does (Liu
//! and Layland), up to a quantum of lateness for the switch. Pick it when requests say when they are
//! needed (`query --deadline`, `X-LLMKernel-Deadline`). With aging 0 it is pure EDF within levels.

use super::{Candidate, Policy};
use crate::config::PolicyKind;
use crate::kernel::scheduler::priority::{POINTS_PER_LEVEL, PriorityPolicy};

pub struct EdfPolicy {
    /// Levels, points and aging: `priority`'s, applied to the entry time a deadline gives.
    aged: PriorityPolicy,
    /// How long before its deadline a process ranks as if it had entered the queue: a wait worth
    /// one point less than a level.
    credit_ms: u64,
}

impl EdfPolicy {
    pub fn new(aging_points_per_sec: u32) -> EdfPolicy {
        let level_milli_points = (POINTS_PER_LEVEL as u64 - 1) * 1000;
        EdfPolicy {
            aged: PriorityPolicy::new(aging_points_per_sec),
            credit_ms: level_milli_points
                .checked_div(u64::from(aging_points_per_sec))
                .unwrap_or(u64::MAX),
        }
    }

    /// When the process counts as having entered the queue: its deadline less the credit, but no
    /// earlier than the credit before its entry, and never later than its entry.
    fn entry_ms(&self, c: &Candidate) -> u64 {
        let Some(deadline) = c.deadline_ms else {
            return c.enqueued_ms;
        };
        deadline
            .saturating_sub(self.credit_ms)
            .clamp(c.enqueued_ms.saturating_sub(self.credit_ms), c.enqueued_ms)
    }
}

impl Policy for EdfPolicy {
    fn kind(&self) -> PolicyKind {
        PolicyKind::Edf
    }

    /// `priority`'s rank, with the deadline's entry time.
    fn rank(&self, c: &Candidate) -> i64 {
        self.aged.rank(&c.entering_at(self.entry_ms(c)))
    }

    /// The points and the aging of the real wait, as `priority` shows them.
    fn display_priority(&self, c: &Candidate, now_ms: u64) -> i32 {
        self.aged.display_priority(c, now_ms)
    }

    fn class(&self, c: &Candidate) -> i64 {
        i64::from(c.base_priority)
    }

    fn rank_at_boundary(&self, c: &Candidate, now_ms: u64, hold_ms: u64) -> i64 {
        self.rank(&c.entering_at(now_ms.saturating_sub(hold_ms)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::scheduler::Scheduler;
    use crate::proto::{Pid, ProcessType};

    fn candidate(pid: u64, t: ProcessType, deadline_ms: Option<u64>, at_ms: u64) -> Candidate {
        Candidate {
            pid: Pid(pid),
            uid: 0,
            base_priority: t.default_base_priority(),
            nice: 0,
            enqueued_ms: at_ms,
            tokens_used: 0,
            interactive: false,
            deadline_ms,
        }
    }

    const NOW: u64 = 1_800_000_000_000;

    #[test]
    fn the_earliest_deadline_runs_first_within_a_level_and_levels_still_come_first() {
        let mut s = Scheduler::new(Box::new(EdfPolicy::new(2)));
        s.enqueue(&candidate(1, ProcessType::User, None, NOW));
        s.enqueue(&candidate(2, ProcessType::User, Some(NOW + 9000), NOW + 1));
        s.enqueue(&candidate(3, ProcessType::User, Some(NOW + 1000), NOW + 2));
        s.enqueue(&candidate(4, ProcessType::Housekeeping, Some(NOW), NOW));
        s.enqueue(&candidate(5, ProcessType::System, None, NOW + 3));
        let order: Vec<_> = std::iter::from_fn(|| s.pick()).collect();
        assert_eq!(order, [5, 3, 2, 1, 4].map(Pid));
    }

    #[test]
    fn a_later_arrival_with_an_earlier_deadline_runs_first_but_far_deadlines_count_as_entry() {
        let p = EdfPolicy::new(2);
        let early = candidate(1, ProcessType::User, Some(NOW + 9000), NOW);
        let urgent = candidate(2, ProcessType::User, Some(NOW + 6000), NOW + 5000);
        assert!(p.rank(&urgent) > p.rank(&early));
        let far = candidate(3, ProcessType::User, Some(NOW + 3_600_000), NOW);
        let none = candidate(4, ProcessType::User, None, NOW);
        assert_eq!(p.rank(&far), p.rank(&none));
        let fresh_system = candidate(5, ProcessType::System, None, NOW);
        let due_user = candidate(6, ProcessType::User, Some(NOW), NOW);
        assert!(
            p.rank(&fresh_system) > p.rank(&due_user),
            "a level still counts"
        );
    }

    #[test]
    fn absurd_deadlines_aging_and_levels_do_not_overflow() {
        for aging in [0, 1, u32::MAX] {
            let p = EdfPolicy::new(aging);
            let mut c = candidate(1, ProcessType::System, Some(u64::MAX), u64::MAX);
            c.base_priority = u8::MAX;
            c.nice = i8::MIN;
            let _ = (
                p.rank(&c),
                p.display_priority(&c, 0),
                p.display_priority(&c, u64::MAX),
            );
            let soon = candidate(2, ProcessType::Housekeeping, Some(10), 0);
            assert!(p.rank(&soon) >= p.rank(&candidate(3, ProcessType::Housekeeping, None, 0)));
        }
    }
}
