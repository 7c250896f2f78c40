//! `mlfq`: a multi-level feedback queue. A process starts at the top level; each level allows it a
//! number of generated tokens (one quantum at the top, doubling per level down) and a process that
//! uses up its allowance sinks a level. Higher levels run first; within a level, first come first
//! served, and round robin at quantum boundaries. Every `boost` period all processes rise back to the
//! top, so long generators cannot starve and a process that turns interactive again is treated so.
//! It optimizes time to first token for short, interactive queries without knowing in advance which
//! are short; process types and nice do not count. A process's class is its level (the top highest),
//! so a newcomer switches out a process that has sunk below it at once. Pick it for a mix of chat-like queries and long
//! generators where nobody labels which is which.
//!
//! The boost needs no timer and no re-sorting: periods are numbered by the kernel clock, a process's
//! rank is `-(period × LEVELS + level)` at the time it enters the queue, so anything that entered in an
//! earlier period outranks everything of later periods, exactly as if the boost had moved the lower
//! levels, in order, to the top.

use super::{Candidate, Policy};
use crate::config::PolicyKind;
use crate::proto::Pid;
use std::collections::HashMap;

/// Levels of the queue; the last one keeps what sinks to it.
pub const LEVELS: u8 = 4;

/// Every this many milliseconds, every process rises to the top level.
pub const BOOST_PERIOD_MS: u64 = 10_000;

/// Where a process stands: its level and what it has used of that level's allowance, in a period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Standing {
    level: u8,
    used: u32,
    period: u64,
}

pub struct MlfqPolicy {
    quantum_tokens: u32,
    boost_period_ms: u64,
    standings: HashMap<Pid, Standing>,
}

impl MlfqPolicy {
    pub fn new(quantum_tokens: u32, boost_period_ms: u64) -> MlfqPolicy {
        MlfqPolicy {
            quantum_tokens: quantum_tokens.max(1),
            boost_period_ms: boost_period_ms.max(1),
            standings: HashMap::new(),
        }
    }

    fn period(&self, ms: u64) -> u64 {
        ms / self.boost_period_ms
    }

    /// The level of `pid` in `period`: its own if it was placed in that period, else the top.
    fn level(&self, pid: Pid, period: u64) -> u8 {
        self.standings
            .get(&pid)
            .filter(|s| s.period == period)
            .map_or(0, |s| s.level)
    }

    /// Tokens a process may generate at `level` before it sinks.
    fn allowance(&self, level: u8) -> u32 {
        self.quantum_tokens.saturating_mul(1 << level.min(16))
    }
}

impl Policy for MlfqPolicy {
    fn kind(&self) -> PolicyKind {
        PolicyKind::Mlfq
    }

    fn rank(&self, c: &Candidate) -> i64 {
        let period = self.period(c.enqueued_ms);
        let place = period
            .saturating_mul(u64::from(LEVELS))
            .saturating_add(u64::from(self.level(c.pid, period)));
        -(place.min(i64::MAX as u64) as i64)
    }

    /// The level counted from the bottom: the top level shows highest.
    fn display_priority(&self, c: &Candidate, now_ms: u64) -> i32 {
        i32::from(LEVELS - 1 - self.level(c.pid, self.period(now_ms)))
    }

    fn charge(&mut self, c: &Candidate, tokens: u32, now_ms: u64) {
        let period = self.period(now_ms);
        let mut s = self
            .standings
            .get(&c.pid)
            .copied()
            .filter(|s| s.period == period)
            .unwrap_or(Standing {
                level: 0,
                used: 0,
                period,
            });
        s.used = s.used.saturating_add(tokens);
        while s.level < LEVELS - 1 && s.used >= self.allowance(s.level) {
            s.used -= self.allowance(s.level);
            s.level += 1;
        }
        self.standings.insert(c.pid, s);
    }

    fn retire(&mut self, pid: Pid) {
        self.standings.remove(&pid);
    }

    /// The level counted from the bottom, in the period of `c`'s entry (now, for a running one).
    fn class(&self, c: &Candidate) -> i64 {
        let level = self.level(c.pid, self.period(c.enqueued_ms));
        i64::from(LEVELS - 1 - level)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::scheduler::Scheduler;

    fn at(pid: u64, ms: u64) -> Candidate {
        Candidate {
            pid: Pid(pid),
            uid: 0,
            base_priority: 1,
            nice: 0,
            enqueued_ms: ms,
            tokens_used: 0,
            interactive: false,
            deadline_ms: None,
        }
    }

    #[test]
    fn a_long_generator_sinks_a_level_per_used_allowance() {
        let mut p = MlfqPolicy::new(4, 1000);
        let c = at(1, 0);
        let levels: Vec<u8> = (0..30)
            .map(|_| {
                p.charge(&c, 1, 10);
                p.level(c.pid, 0)
            })
            .collect();
        // 4 tokens at level 0, 8 at level 1, 16 at level 2, then the bottom.
        assert_eq!(levels[2], 0);
        assert_eq!(levels[3], 1);
        assert_eq!(levels[10], 1);
        assert_eq!(levels[11], 2);
        assert_eq!(levels[27], 3);
        assert_eq!(p.display_priority(&c, 10), 0);
        assert_eq!(p.display_priority(&c, 1000), 3, "boosted next period");
    }

    #[test]
    fn a_short_newcomer_runs_before_a_sunken_one_and_a_boost_puts_old_waiters_first() {
        let mut s = Scheduler::new(Box::new(MlfqPolicy::new(4, 1000)));
        let long = at(1, 0);
        s.charge(&long, 100, 0);
        s.enqueue(&at(1, 500));
        s.enqueue(&at(2, 600));
        assert_eq!(s.pick(), Some(Pid(2)), "the newcomer is at the top level");
        s.enqueue(&at(3, 1500));
        // Process 1 entered in the earlier period: boosted, it is ahead of the new period's work.
        assert_eq!(s.pick(), Some(Pid(1)));
        assert_eq!(s.pick(), Some(Pid(3)));
    }
}
