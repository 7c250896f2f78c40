//! What the kernel remembers so that it switches processes sparingly, and what switching has cost:
//! when each slot's run began on the kernel clock and whether it resumed a switched-out process (for
//! the guard and the margin), which waiting processes were switched out for more urgent work (they
//! wait for a free slot instead of taking one from their equals, so slots are never traded), when
//! interactive work was last about (for the reservation), and the counters `sched` shows.

use crate::proto::Pid;
use std::collections::HashSet;

/// The run on one slot, as the switching rules see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotRun {
    pub pid: Pid,
    pub run_id: u64,
    /// Kernel-clock milliseconds when the run started.
    pub started_ms: u64,
    /// The run continues a process that had left a slot with work left.
    pub resumed: bool,
}

/// What switching has done and cost since the kernel started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SwitchCounters {
    /// Runs the scheduler cut to give their slot to another process (each a cancelled request).
    pub switches: u64,
    /// Of those, the ones cut at once for more urgent work, not at a quantum boundary.
    pub urgent: u64,
    /// Runs that resumed a switched-out process and whose prompt size the backend reported.
    pub resumes_measured: u64,
    /// Prompt tokens the backend read for those resumes: the conversation read again.
    pub reread_prompt_tokens: u64,
}

/// The kernel's memory of recent switches; see the module docs.
#[derive(Debug, Default)]
pub struct SwitchLedger {
    /// Indexed by slot; an entry outlives its run until the slot's next run (callers match run ids).
    slots: Vec<Option<SlotRun>>,
    /// Waiting processes switched out for a more urgent class.
    displaced: HashSet<Pid>,
    /// Kernel-clock milliseconds when interactive work was last waiting or running.
    last_interactive_ms: Option<u64>,
    pub counters: SwitchCounters,
}

impl SwitchLedger {
    /// A run started on `slot`.
    pub fn started(&mut self, slot: u32, run: SlotRun) {
        let index = slot as usize;
        if self.slots.len() <= index {
            self.slots.resize(index + 1, None);
        }
        self.slots[index] = Some(run);
        self.displaced.remove(&run.pid);
    }

    /// The run on `slot` if it is `run_id`.
    pub fn run(&self, slot: u32, run_id: u64) -> Option<SlotRun> {
        self.slots
            .get(slot as usize)
            .copied()
            .flatten()
            .filter(|r| r.run_id == run_id)
    }

    /// The scheduler cut the run of `pid`; `urgent`: at once, for a more urgent class.
    pub fn switched_out(&mut self, pid: Pid, urgent: bool) {
        self.counters.switches += 1;
        if urgent {
            self.counters.urgent += 1;
            self.displaced.insert(pid);
        }
    }

    /// Whether `pid` waits after being switched out for more urgent work.
    pub fn is_displaced(&self, pid: Pid) -> bool {
        self.displaced.contains(&pid)
    }

    /// Forgets displaced processes that no longer wait (stopped, ended).
    pub fn keep_displaced(&mut self, mut waiting: impl FnMut(Pid) -> bool) {
        if !self.displaced.is_empty() {
            self.displaced.retain(|pid| waiting(*pid));
        }
    }

    /// The backend reported the prompt size of `run_id`: counted when it resumed a process.
    pub fn on_usage(&mut self, run_id: u64, prompt_tokens: u32) {
        let resumed = self
            .slots
            .iter()
            .flatten()
            .any(|r| r.run_id == run_id && r.resumed);
        if resumed {
            self.counters.resumes_measured += 1;
            self.counters.reread_prompt_tokens += u64::from(prompt_tokens);
        }
    }

    /// Interactive work is waiting or running at `now_ms`.
    pub fn saw_interactive(&mut self, now_ms: u64) {
        self.last_interactive_ms = Some(now_ms);
    }

    /// Whether interactive work was about within `window_ms` of `now_ms`.
    pub fn interactive_within(&self, now_ms: u64, window_ms: u64) -> bool {
        self.last_interactive_ms
            .is_some_and(|last| now_ms.saturating_sub(last) <= window_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pid: u64, run_id: u64, resumed: bool) -> SlotRun {
        SlotRun {
            pid: Pid(pid),
            run_id,
            started_ms: 0,
            resumed,
        }
    }

    #[test]
    fn only_resumed_runs_count_their_prompt_as_read_again() {
        let mut l = SwitchLedger::default();
        l.started(1, run(1, 10, false));
        l.started(0, run(2, 11, true));
        l.on_usage(10, 500);
        l.on_usage(11, 700);
        assert_eq!(l.counters.reread_prompt_tokens, 700);
        assert_eq!(l.counters.resumes_measured, 1);
        assert_eq!(l.run(0, 11).map(|r| r.pid), Some(Pid(2)));
        assert_eq!(l.run(0, 10), None, "another run's id");
    }

    #[test]
    fn a_displaced_process_is_forgotten_when_it_starts_again_or_stops_waiting() {
        let mut l = SwitchLedger::default();
        l.switched_out(Pid(1), true);
        l.switched_out(Pid(2), true);
        l.switched_out(Pid(3), false);
        assert_eq!((l.counters.switches, l.counters.urgent), (3, 2));
        assert!(l.is_displaced(Pid(1)) && !l.is_displaced(Pid(3)));
        l.started(0, run(1, 5, true));
        assert!(!l.is_displaced(Pid(1)));
        l.keep_displaced(|_| false);
        assert!(!l.is_displaced(Pid(2)));
    }

    #[test]
    fn interactive_work_counts_as_recent_for_the_window() {
        let mut l = SwitchLedger::default();
        assert!(!l.interactive_within(0, 1000));
        l.saw_interactive(5000);
        assert!(l.interactive_within(6000, 1000));
        assert!(!l.interactive_within(6001, 1000));
    }
}
