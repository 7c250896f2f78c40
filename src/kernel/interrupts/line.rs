//! One interrupt line's bookkeeping: its counters and the handler processes it has queued that have
//! not started yet. The bound on those is what keeps a signal storm from flooding the run queue: a
//! raise while the line's handlers already wait at the limit merges into them (coalesced).

use crate::proto::Pid;

/// How often a line was raised and what became of the raises.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Raises the kernel saw: signal rings taken, `interrupt` requests, timer ticks, queries.
    pub raised: u64,
    /// Raises that started no handler of their own because handlers already waited at the limit
    /// (or, within one batch of rings, because one handler serves the whole batch).
    pub coalesced: u64,
    /// Handler processes started.
    pub handled: u64,
}

/// A line's counters and its handlers that wait for a slot.
#[derive(Debug, Default)]
pub struct LineState {
    pub counters: Counters,
    /// Handlers created by this line that may not have started yet.
    waiting: Vec<Pid>,
}

impl LineState {
    /// Forgets handlers that have left the queue: started, stopped, ended or gone.
    pub fn prune(&mut self, still_waiting: impl Fn(Pid) -> bool) {
        self.waiting.retain(|pid| still_waiting(*pid));
    }

    /// Handlers waiting now (as of the last prune).
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Whether another handler may wait, under a limit of `max_waiting`.
    pub fn has_room(&self, max_waiting: u32) -> bool {
        self.waiting.len() < max_waiting as usize
    }

    /// Records a batch of `rings` raises taken together, which started a handler (or several, from
    /// the spool) or none.
    pub fn record_raises(&mut self, rings: u64, started_any: bool) {
        self.counters.raised += rings;
        self.counters.coalesced += rings.saturating_sub(u64::from(started_any));
    }

    /// Records a handler process started for this line.
    pub fn started(&mut self, pid: Pid) {
        self.counters.handled += 1;
        self.waiting.push(pid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_of_rings_with_a_handler_counts_one_handled_and_the_rest_coalesced() {
        let mut line = LineState::default();
        line.started(Pid(1));
        line.record_raises(5, true);
        assert_eq!(
            line.counters,
            Counters {
                raised: 5,
                coalesced: 4,
                handled: 1
            }
        );
    }

    #[test]
    fn raises_at_the_limit_are_all_coalesced_and_start_nothing() {
        let mut line = LineState::default();
        for pid in 1..=4 {
            assert!(line.has_room(4));
            line.started(Pid(pid));
            line.record_raises(1, true);
        }
        assert!(!line.has_room(4), "four wait: the limit");
        line.record_raises(996, false);
        let c = line.counters;
        assert_eq!((c.raised, c.coalesced, c.handled), (1000, 996, 4));
        assert_eq!(c.raised, c.handled + c.coalesced);
    }

    #[test]
    fn a_started_handler_makes_room() {
        let mut line = LineState::default();
        line.started(Pid(1));
        line.started(Pid(2));
        assert!(!line.has_room(2));
        line.prune(|pid| pid != Pid(1));
        assert_eq!(line.waiting(), 1);
        assert!(line.has_room(2));
    }
}
