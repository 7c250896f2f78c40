//! `priority`, the default policy: the prototype's type priorities, shifted by nice, with aging.
//!
//! A process's priority is `20 × base − nice` points (USER 80, SYSTEM 100; nice −20..19 moves it up
//! to a level up or almost a level down). While it waits it gains `aging` points per second, so a
//! HOUSEKEEPING process behind an endless stream of USER work overtakes it after (80−20)/aging seconds:
//! nothing starves. Because every waiting process gains at the same rate, the order between two waiting
//! processes never changes while they wait; the rank `points − aging × entry time` captures the whole
//! effect, and the queue needs no re-sorting. Pick it when the process types mean what they say:
//! system and user work first, background work when there is room, and everyone eventually.
//!
//! A process's class is its type's base priority: a waiting process of a higher type switches out a
//! running one at once. At a quantum boundary the running process keeps the credit of `hold_ms` of
//! waiting, so aging lets a waiting process of its own type displace it only after waiting that long.

use super::{Candidate, Policy};
use crate::config::PolicyKind;

/// Priority points per level of base priority.
pub const POINTS_PER_LEVEL: i64 = 20;

pub struct PriorityPolicy {
    /// Points a waiting process gains per second.
    aging_points_per_sec: i64,
}

impl PriorityPolicy {
    pub fn new(aging_points_per_sec: u32) -> PriorityPolicy {
        PriorityPolicy {
            aging_points_per_sec: i64::from(aging_points_per_sec),
        }
    }

    fn points(c: &Candidate) -> i64 {
        POINTS_PER_LEVEL * i64::from(c.base_priority) - i64::from(c.nice)
    }
}

impl Policy for PriorityPolicy {
    fn kind(&self) -> PolicyKind {
        PolicyKind::Priority
    }

    /// In milli-points: points × 1000 − aging × entry milliseconds (points/s × ms = milli-points).
    /// Worked out in i128 (no product of an i64 and a u64 overflows it) and held to the i64 range:
    /// only an absurd aging rate meets the bound, and then ranks tie instead of wrapping around.
    fn rank(&self, c: &Candidate) -> i64 {
        let milli_points = i128::from(Self::points(c)) * 1000
            - i128::from(self.aging_points_per_sec) * i128::from(c.enqueued_ms);
        clamp_i64(milli_points)
    }

    /// Held to the i32 range: a process that waited for days at a high aging rate shows the highest
    /// priority there is, never a negative one.
    fn display_priority(&self, c: &Candidate, now_ms: u64) -> i32 {
        let waited_ms = i128::from(now_ms.saturating_sub(c.enqueued_ms));
        let points =
            i128::from(Self::points(c)) + i128::from(self.aging_points_per_sec) * waited_ms / 1000;
        i32::try_from(points.clamp(i128::from(i32::MIN), i128::from(i32::MAX))).unwrap_or(i32::MAX)
    }

    fn class(&self, c: &Candidate) -> i64 {
        i64::from(c.base_priority)
    }

    fn rank_at_boundary(&self, c: &Candidate, now_ms: u64, hold_ms: u64) -> i64 {
        self.rank(&c.entering_at(now_ms.saturating_sub(hold_ms)))
    }
}

fn clamp_i64(n: i128) -> i64 {
    i64::try_from(n.clamp(i128::from(i64::MIN), i128::from(i64::MAX))).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::scheduler::Scheduler;
    use crate::proto::{Pid, ProcessType};

    fn candidate(pid: u64, t: ProcessType, nice: i8, at_ms: u64) -> Candidate {
        Candidate {
            pid: Pid(pid),
            uid: 0,
            base_priority: t.default_base_priority(),
            nice,
            enqueued_ms: at_ms,
            tokens_used: 0,
            interactive: false,
            deadline_ms: None,
        }
    }

    #[test]
    fn higher_type_runs_first_and_system_is_not_skipped() {
        let mut s = Scheduler::new(Box::new(PriorityPolicy::new(1)));
        s.enqueue(&candidate(1, ProcessType::Housekeeping, 0, 0));
        s.enqueue(&candidate(2, ProcessType::System, 0, 0));
        s.enqueue(&candidate(3, ProcessType::User, 0, 0));
        assert_eq!(s.pick(), Some(Pid(2)));
        assert_eq!(s.pick(), Some(Pid(3)));
        assert_eq!(s.pick(), Some(Pid(1)));
    }

    #[test]
    fn nice_shifts_within_and_across_levels() {
        let mut s = Scheduler::new(Box::new(PriorityPolicy::new(1)));
        s.enqueue(&candidate(1, ProcessType::User, 5, 0));
        s.enqueue(&candidate(2, ProcessType::User, 1, 0));
        s.enqueue(&candidate(3, ProcessType::UserSubprocess, -20, 0));
        assert_eq!(s.pick(), Some(Pid(3)), "nice -20 lifts a whole level");
        assert_eq!(s.pick(), Some(Pid(2)));
        assert_eq!(s.pick(), Some(Pid(1)));
    }

    #[test]
    fn a_starving_process_ages_past_a_stream_of_newer_high_priority_work() {
        let aging = 2;
        let mut s = Scheduler::new(Box::new(PriorityPolicy::new(aging)));
        s.enqueue(&candidate(1, ProcessType::Housekeeping, 19, 0));
        // A new SYSTEM process arrives every second and one process runs per second.
        for second in 0..1000u64 {
            s.enqueue(&candidate(
                second + 2,
                ProcessType::System,
                -20,
                second * 1000,
            ));
            if s.pick() == Some(Pid(1)) {
                let bound = (120 - (20 - 19)) / aging as u64 + 1;
                assert!(second <= bound, "ran after {second}s, bound {bound}s");
                return;
            }
        }
        panic!("housekeeping process starved");
    }

    #[test]
    fn extreme_aging_clocks_and_nice_values_never_overflow() {
        let p = PriorityPolicy::new(u32::MAX);
        let mut c = candidate(1, ProcessType::System, i8::MIN, u64::MAX);
        c.base_priority = u8::MAX;
        assert_eq!(p.rank(&c), i64::MIN, "held at the bound, not wrapped");
        assert_eq!(p.display_priority(&c, u64::MAX), 20 * 255 + 128);
        c.enqueued_ms = 0;
        assert_eq!(p.display_priority(&c, u64::MAX), i32::MAX);
        let c = candidate(2, ProcessType::Housekeeping, i8::MAX, 0);
        assert!(p.rank(&c) > p.rank(&candidate(3, ProcessType::Housekeeping, i8::MAX, 1)));
    }

    #[test]
    fn a_process_waiting_for_days_shows_a_high_priority_not_a_wrapped_one() {
        let p = PriorityPolicy::new(1000);
        let c = candidate(1, ProcessType::Housekeeping, 19, 0);
        let thirty_days_ms = 30 * 24 * 3600 * 1000;
        assert_eq!(p.display_priority(&c, thirty_days_ms), i32::MAX);
        let week_ms = 7 * 24 * 3600 * 1000;
        assert_eq!(p.display_priority(&c, week_ms), 20 - 19 + 604_800_000);
    }

    #[test]
    fn a_running_process_holds_its_slot_against_its_own_type_until_the_margin_is_waited() {
        let p = PriorityPolicy::new(2);
        let waiting = candidate(1, ProcessType::Housekeeping, 0, 10_000);
        let running = candidate(2, ProcessType::Housekeeping, 0, 0);
        let hold_ms = 500;
        assert!(p.rank(&waiting) < p.rank_at_boundary(&running, 10_400, hold_ms));
        assert!(p.rank(&waiting) > p.rank_at_boundary(&running, 10_600, hold_ms));
        let user = candidate(3, ProcessType::User, 0, 10_000);
        assert!(
            p.class(&user) > p.class(&running),
            "USER is a more urgent class"
        );
    }

    #[test]
    fn displayed_priority_rises_while_waiting() {
        let p = PriorityPolicy::new(2);
        let c = candidate(1, ProcessType::User, 0, 1000);
        assert_eq!(p.display_priority(&c, 1000), 80);
        assert_eq!(p.display_priority(&c, 11_000), 100);
    }
}
