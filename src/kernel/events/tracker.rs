//! Turns successive looks at the state into events: it keeps the last [`Observed`] of every process and
//! the backend's health, and after each update compares them with the state's. One place, after every
//! update, instead of a hook in every transition: a transition added later is seen without touching it.
//! A change made and undone within one update (a preemption straight back onto the same slot) shows
//! only in the counters it moved (context switches).

use super::Recorder;
use crate::kernel::circuit::CircuitState;
use crate::kernel::state::KernelState;
use crate::kernel::state::observe::Observed;
use crate::proto::{BackendHealth, Circuit, Event, Pid, ProcessState};
use std::collections::HashMap;

/// An event and the uid owning the process it is about, if it is about one.
pub type Owned = (Event, Option<u32>);

/// The last look at the state.
#[derive(Default)]
pub struct Tracker {
    seen: HashMap<Pid, Observed>,
    health: Option<BackendHealth>,
    /// Tokens generated since tracking started, all processes together (for rates).
    pub tokens_total: u64,
}

/// The backend's health as the wire shows it.
pub fn health(state: &KernelState) -> BackendHealth {
    let circuit = match state.circuit.state() {
        CircuitState::Closed => Circuit::Closed,
        CircuitState::Open { until_ms } => Circuit::Open {
            retry_in_ms: until_ms.saturating_sub(state.now_ms()),
        },
        CircuitState::HalfOpen { .. } => Circuit::HalfOpen,
    };
    BackendHealth {
        circuit,
        failures: state.circuit.failures(),
    }
}

impl Tracker {
    /// Starts over from the state as it is: nothing in it is news.
    pub fn reset(&mut self, state: &KernelState) {
        self.seen = state.observe().map(|o| (o.pid, o)).collect();
        self.health = Some(health(state));
    }

    /// The events since the last look, each with the owner of the process it is about, told to
    /// `recorder` too. O(n) in the table.
    pub fn changes(&mut self, state: &KernelState, recorder: Option<&dyn Recorder>) -> Vec<Owned> {
        let mut events = Vec::new();
        let now_ms = state.now_ms();
        let mut present = 0;
        for now in state.observe() {
            present += 1;
            let before = self.seen.insert(now.pid, now);
            self.compare(state, before, &now, now_ms, recorder, &mut events);
        }
        if present != self.seen.len() {
            let gone: Vec<Pid> = self
                .seen
                .keys()
                .filter(|pid| state.get(**pid).is_none())
                .copied()
                .collect();
            for pid in gone {
                let owner = self.seen.remove(&pid).map(|o| o.uid);
                events.push((Event::Reaped(pid), owner));
            }
        }
        let health = health(state);
        if self.health.as_ref().map(|h| (h.circuit_kind(), h.failures))
            != Some((health.circuit_kind(), health.failures))
        {
            if let Some(r) = recorder {
                r.backend(&health);
            }
            events.push((Event::Backend(health.clone()), None));
            self.health = Some(health);
        }
        events
    }

    fn compare(
        &mut self,
        state: &KernelState,
        before: Option<Observed>,
        now: &Observed,
        now_ms: u64,
        recorder: Option<&dyn Recorder>,
        events: &mut Vec<Owned>,
    ) {
        let owner = Some(now.uid);
        let row = |pid| state.stat(pid, 0);
        let Some(before) = before else {
            if let Some(r) = recorder {
                r.created(now);
                // Created and put on a free slot in the same update.
                if now.state == ProcessState::Running {
                    r.dispatched(now, now_ms.saturating_sub(now.enqueued_ms));
                }
            }
            events.extend(row(now.pid).map(|r| (Event::Created(r), owner)));
            return;
        };
        let generated = now.tokens_used.saturating_sub(before.tokens_used);
        self.tokens_total += u64::from(generated);
        if let Some(r) = recorder {
            let prompt = now.prompt_tokens.saturating_sub(before.prompt_tokens);
            if generated > 0 || prompt > 0 {
                r.tokens(now, generated, prompt);
            }
            if before.tokens_used == 0 && now.tokens_used > 0 {
                r.first_token(now, now.created.elapsed());
            }
            if before.state == ProcessState::Waiting && now.state == ProcessState::Running {
                r.dispatched(now, now_ms.saturating_sub(before.enqueued_ms));
            }
        }
        if now.context_switches > before.context_switches
            && let Some(slot) = now.slot
        {
            if let Some(r) = recorder {
                r.context_switches(u64::from(now.context_switches - before.context_switches));
            }
            events.push((Event::ContextSwitch { pid: now.pid, slot }, owner));
        }
        if (before.state, before.slot, before.nice) != (now.state, now.slot, now.nice) {
            events.extend(row(now.pid).map(|r| (Event::Changed(r), owner)));
        }
    }
}

/// The circuit's state without its countdown, which changes every millisecond.
trait CircuitKind {
    fn circuit_kind(&self) -> u8;
}

impl CircuitKind for BackendHealth {
    fn circuit_kind(&self) -> u8 {
        match self.circuit {
            Circuit::Closed => 0,
            Circuit::Open { .. } => 1,
            Circuit::HalfOpen => 2,
        }
    }
}
