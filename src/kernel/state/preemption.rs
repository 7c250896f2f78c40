//! When a running process is switched out, and which one. Three rules, each against a kind of waste:
//!
//! - **At once, for more urgent work.** When a waiting process is of a strictly more urgent class
//!   ([`crate::kernel::scheduler::Policy::class`]) than some running process and no slot is free for
//!   it, the cheapest such process to switch (the lowest class, then the shortest conversation to read
//!   again) is cut now, every token it produced kept; a process that won its slot by aging is not
//!   cut before its quantum boundary. One waiting process, at most one switch: the
//!   victim is of the lowest class running, so it cannot displace anyone in turn.
//! - **At a quantum boundary, among equals.** Only the lowest-ranked running process yields, to the
//!   waiting process that would take its slot; a process resumed less than a guard of quanta ago does
//!   not yield to its equals, a process of its own class must outrank it by the margin of a few
//!   quanta of waiting, and a process switched out for more urgent work waits for a free slot rather
//!   than taking one from its equals (so two slots are never traded). While interactive work is
//!   about, background work does not take turns among itself at all: each such switch costs a
//!   re-read that stalls the whole batch, questions included.
//! - **Slots kept for interactive work.** While interactive work was about within the reservation
//!   window, background work may hold at most `cpus − reserved` slots; afterwards it gets them all.
//!
//! The cost is O(cpus + log n) per decision, whatever the queue length.

use super::KernelState;
use crate::kernel::process::{AtBoundary, Process};
use crate::kernel::scheduler::Candidate;
use crate::kernel::scheduler::switches::SwitchCounters;
use crate::proto::{Pid, ProcessState, Signal};

/// Bytes per token when estimating how much of a conversation a backend must read again (English
/// text averages about four bytes a token in the common BPE vocabularies).
const BYTES_PER_TOKEN_ESTIMATE: usize = 4;

impl KernelState {
    /// Returns whether the run of `pid`, at a quantum boundary, goes on.
    pub(super) fn quantum_boundary(&mut self, pid: Pid) -> bool {
        let Some(p) = self.table.get(&pid) else {
            return false;
        };
        if p.at_boundary == AtBoundary::Terminate {
            self.kill(pid, Signal::Term);
            return false;
        }
        let now = self.now_ms();
        let me = self.candidate_at(p, now);
        let Some(waiting) = self.next_in_line(now, !me.interactive) else {
            return true;
        };
        // Another model's work, or work a `swap` server would have to switch model for.
        if let Some(run) = &p.run
            && !self.may_hand_over(run.slot, waiting.pid)
        {
            return true;
        }
        let urgent = self.scheduler.class(&waiting) > self.scheduler.class(&me);
        if !urgent && self.holds_against_equal(p, &me, &waiting, now) {
            return true;
        }
        let my_rank = self.scheduler.rank(&me);
        if self.another_runs_lower(pid, my_rank, now, urgent) {
            return true;
        }
        self.switch_out(pid, urgent);
        false
    }

    /// Whether the running `p` keeps its slot against `waiting`, of no more urgent class: within its
    /// guard, against a process waiting for a free slot after more urgent work took its own, or
    /// when `waiting` does not outrank it by the margin.
    fn holds_against_equal(
        &self,
        p: &Process,
        me: &Candidate,
        waiting: &Candidate,
        now: u64,
    ) -> bool {
        let Some(run) = p.run.as_ref() else {
            return true;
        };
        let settings = self.config.scheduler;
        let quantum = u64::from(self.config.quantum_tokens.max(1));
        if self.guarded(p) || self.background_holds(me, waiting, now) {
            return true;
        }
        let same_class = self.scheduler.class(waiting) == self.scheduler.class(me);
        if same_class && self.switching.is_displaced(waiting.pid) {
            return true;
        }
        // The margin, in this run's tokens timed at its pace on the kernel clock: a few of its
        // quanta, or half of what switching it out would make the server read again if that is
        // more. So a turn among equals lasts at least half the conversation it costs to resume,
        // turns lengthen as an answer grows, and an answer of N tokens is switched out some log N
        // times instead of N / quantum (reading a prompt is several times faster than generating,
        // so the re-reading stays a small share of each turn). A margin of 0 turns both off.
        let elapsed = self
            .switching
            .run(run.slot, run.id)
            .map_or(0, |r| now.saturating_sub(r.started_ms));
        let hold_tokens = match u64::from(settings.switch_margin_quanta) * quantum {
            0 => 0,
            margin => margin.max(switch_cost(p) as u64 / 2),
        };
        let hold_ms = hold_tokens * elapsed / u64::from(run.tokens.max(1));
        let waiting_rank = self.scheduler.rank(waiting);
        waiting_rank < self.scheduler.rank_at_boundary(me, now, hold_ms)
    }

    /// Switches out less urgent work for more urgent waiting processes that no free slot awaits: at
    /// most one running process per waiting one (called after every dispatch).
    pub(super) fn preempt_for_urgent(&mut self, now: u64) {
        // Bounded: every turn ends a different run, and there are `cpus` of them.
        for _ in 0..self.slots.len() {
            // Background work may come next if a background victim makes room for it.
            let Some(waiting) = self.next_in_line(now, true) else {
                return;
            };
            let background_only = !waiting.interactive && !self.background_room(now, false);
            let Some(victim) = self.cheapest_victim(&waiting, background_only, now) else {
                return;
            };
            self.switch_out(victim, true);
        }
    }

    /// The running process (not already leaving) to switch out for `waiting`, if any: of a lower
    /// class than it (and of a background type with `background_only`), and not holding a rank above
    /// it (a process that won its slot by aging keeps it for its quantum, or aging would not prevent
    /// starvation); the lowest class first, then the one with the least to read again on resuming.
    fn cheapest_victim(&self, waiting: &Candidate, background_only: bool, now: u64) -> Option<Pid> {
        let class = self.scheduler.class(waiting);
        let rank = self.scheduler.rank(waiting);
        self.switchable()
            .map(|p| (self.candidate_at(p, now), p))
            .filter(|(c, _)| !(background_only && c.interactive))
            .filter(|(_, p)| {
                p.run
                    .as_ref()
                    .is_some_and(|r| self.may_hand_over(r.slot, waiting.pid))
            })
            .map(|(c, p)| (self.scheduler.class(&c), p))
            .filter(|(c, p)| *c < class && self.scheduler.rank(&self.candidate(p)) < rank)
            .min_by_key(|(c, p)| (*c, switch_cost(p), std::cmp::Reverse(p.pid)))
            .map(|(_, p)| p.pid)
    }

    /// Ends the run of `pid` to hand its slot over; its output is kept and it queues again when the
    /// run task lets go. `urgent`: for a more urgent class, at once.
    pub(super) fn switch_out(&mut self, pid: Pid, urgent: bool) {
        let Some(run) = self.table.get_mut(&pid).and_then(|p| p.run.as_mut()) else {
            return;
        };
        run.ending = true;
        run.cancel.cancel();
        self.switching.switched_out(pid, urgent);
    }

    /// The waiting process that gets the next slot handed over (past those already promised the
    /// slots being given up), as of its entry into the queue. `background_leaves`: weigh the
    /// reservation as if a background process had left its slot.
    fn next_in_line(&self, now: u64, background_leaves: bool) -> Option<Candidate> {
        let promised = self.slots_being_released();
        let interactive_only = !self.background_room(now, background_leaves);
        let (pid, _) = self.scheduler.nth_waiting(promised, interactive_only)?;
        self.table.get(&pid).map(|p| self.candidate(p))
    }

    /// Whether background work may take one more slot at `now` (with one background process off
    /// its slot, if `background_leaves`).
    pub(super) fn background_room(&self, now: u64, background_leaves: bool) -> bool {
        let settings = self.config.scheduler;
        let cpus = self.slots.len();
        let reserved = if self.interactive_about(now) {
            settings.reserved_of(cpus as u32) as usize
        } else {
            0
        };
        let background = self
            .slots
            .iter()
            .flatten()
            .filter_map(|pid| self.table.get(pid))
            .filter(|p| !self.config.scheduler.is_interactive(p.spec.process_type))
            .count();
        background.saturating_sub(usize::from(background_leaves)) + reserved < cpus
    }

    /// Whether the running background `me` keeps its slot against the waiting background `waiting`
    /// because interactive work is about (see [`Self::interactive_about`]); never under a policy
    /// that takes turns each quantum, whose turns the user asked for.
    fn background_holds(&self, me: &Candidate, waiting: &Candidate, now: u64) -> bool {
        !me.interactive
            && !waiting.interactive
            && !self.scheduler.takes_turns_each_quantum()
            && self.interactive_about(now)
    }

    /// Whether interactive work was waiting or running within the reservation window. While it is,
    /// background work does not take turns among itself: every such switch makes the server read the
    /// victim's conversation again when it resumes, in one long step that every sequence of the batch
    /// waits for, a question's first token included (a 130-token re-read is some 300 ms of a small
    /// model on two cores). Background runs are bounded by their allowance, so the one waiting still
    /// gets a slot when one ends; once interactive work is gone, turns among equals resume.
    fn interactive_about(&self, now: u64) -> bool {
        let window_ms = self.config.scheduler.reservation_window.as_millis() as u64;
        self.switching.interactive_within(now, window_ms)
    }

    /// What switching has done and cost so far.
    pub fn switch_counters(&self) -> SwitchCounters {
        self.switching.counters
    }

    /// The slots kept from background work, and whether they are kept now.
    pub fn reservation(&self) -> (u32, bool) {
        let reserved = self.config.scheduler.reserved_of(self.slots.len() as u32);
        let active = reserved > 0 && self.interactive_about(self.now_ms());
        (reserved, active)
    }

    /// Keeps the time interactive work was last waiting or running (the reservation's clock), and
    /// forgets displaced processes that were stopped or ended.
    pub(super) fn note_interactive_work(&mut self, now: u64) {
        let running = self
            .running_processes()
            .any(|p| self.config.scheduler.is_interactive(p.spec.process_type));
        if running || self.scheduler.interactive_waiting() > 0 {
            self.switching.saw_interactive(now);
        }
        // Still leaving its slot (Running, its run ending) or waiting; it starts again otherwise.
        let table = &self.table;
        self.switching.keep_displaced(|pid| {
            table
                .get(&pid)
                .is_some_and(|p| matches!(p.state, ProcessState::Waiting | ProcessState::Running))
        });
    }

    /// Slots still held by runs the kernel has already ended: each goes to a waiting process soon.
    fn slots_being_released(&self) -> usize {
        self.slots
            .iter()
            .flatten()
            .filter(|pid| {
                self.table
                    .get(pid)
                    .and_then(|p| p.run.as_ref())
                    .is_some_and(|r| r.ending)
            })
            .count()
    }

    /// Processes on a slot whose run the kernel has not ended.
    fn running_processes(&self) -> impl Iterator<Item = &Process> {
        self.slots
            .iter()
            .flatten()
            .filter_map(|pid| self.table.get(pid))
            .filter(|p| p.run.as_ref().is_some_and(|r| !r.ending))
    }

    /// The running processes the scheduler may switch out: not those a continuation could break
    /// (tools, a response format, several choices, logprobs), which keep their slot until they end.
    fn switchable(&self) -> impl Iterator<Item = &Process> {
        self.running_processes().filter(|p| !p.unsliced)
    }

    /// Whether another running process (not already leaving) ranks below `rank` now: it yields first,
    /// at its own boundary. Ties make `pid` the one to yield. Unless the slot is for more urgent work
    /// (`urgent`), a process protected by its guard does not count: it would not yield.
    fn another_runs_lower(&self, pid: Pid, rank: i64, now: u64, urgent: bool) -> bool {
        self.switchable()
            .filter(|p| p.pid != pid)
            .filter(|p| urgent || !self.guarded(p))
            .any(|p| self.scheduler.rank(&self.candidate_at(p, now)) < rank)
    }

    /// Whether `p`'s run resumed it less than the guard's quanta ago (see
    /// [`crate::config::SchedulerSettings::switch_guard_quanta`]).
    fn guarded(&self, p: &Process) -> bool {
        let guard_tokens = u64::from(self.config.scheduler.switch_guard_quanta)
            * u64::from(self.config.quantum_tokens);
        !self.scheduler.takes_turns_each_quantum()
            && p.run.as_ref().is_some_and(|run| {
                u64::from(run.tokens) < guard_tokens
                    && self
                        .switching
                        .run(run.slot, run.id)
                        .is_some_and(|r| r.resumed)
            })
    }
}

/// What switching `p` out costs, in tokens: the conversation the backend reads again on resuming.
fn switch_cost(p: &Process) -> usize {
    let system = p.spec.system.as_ref().map_or(0, String::len);
    (system + p.spec.prompt.len() + p.output.len()) / BYTES_PER_TOKEN_ESTIMATE
}
