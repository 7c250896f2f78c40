//! The kernel's events, as a `Subscribe` stream carries them (`top`, the dashboard). Every enum here is
//! append-only, like the messages: the variant index is the wire tag.

use super::messages::{InterruptKind, ProcessInfo};
use super::types::Pid;
use serde::{Deserialize, Serialize};

/// One event of a subscription.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// The table and the machine when the subscription starts, before any other event; a large table
    /// comes in several frames, all but the last with `complete: false`.
    Snapshot(Snapshot),
    /// A process was created; its first row.
    Created(ProcessInfo),
    /// A process changed state, slot or niceness, or ended (then `exit` is set); its new row.
    Changed(ProcessInfo),
    /// A process left the table (its exit was collected, or it expired).
    Reaped(Pid),
    /// A process went back onto a slot after leaving one with work left.
    ContextSwitch { pid: Pid, slot: u32 },
    /// The periodic sample of rates and counters.
    Sample(Sample),
    /// The backend's health changed.
    Backend(BackendHealth),
    /// An interrupt line was raised.
    Interrupt(InterruptRaised),
    /// This many events were dropped here because the subscriber read too slowly. A client that
    /// needs the whole picture again asks `List` (samples keep coming either way).
    Lost { count: u64 },
}

/// The machine and table at the start of a subscription.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub processes: Vec<ProcessInfo>,
    /// Whether this frame holds the last rows of the snapshot.
    pub complete: bool,
    /// Generation slots the kernel time-shares.
    pub cpus: u32,
    pub policy: String,
    pub backend: BackendHealth,
    /// Context switches since the kernel started.
    pub context_switches: u64,
}

/// Rates over the last sampling interval, and each live process's counters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Milliseconds the rates are measured over.
    pub interval_ms: u64,
    /// Tokens generated per second, all processes together.
    pub tokens_per_s: f64,
    pub switches_per_s: f64,
    /// Processes waiting for a slot.
    pub queue: u32,
    /// Slots in use, of `cpus`.
    pub running: u32,
    pub cpus: u32,
    /// The process on each slot, by slot number.
    pub slots: Vec<Option<Pid>>,
    pub processes: Vec<ProcessTick>,
}

/// A live process's counters in a [`Sample`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProcessTick {
    pub pid: Pid,
    /// Effective priority now (aging moves it between events).
    pub priority: i32,
    pub tokens_used: u32,
    pub prompt_tokens: u32,
    pub cpu_ms: u64,
    pub tokens_per_s: f64,
}

/// Whether the backend takes work (see the kernel's backend circuit).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendHealth {
    pub circuit: Circuit,
    /// Failures in a row without an answer in between.
    pub failures: u32,
}

/// The backend circuit. Append-only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Circuit {
    /// The backend answers.
    Closed,
    /// The backend failed; nothing is dispatched for this many milliseconds.
    Open { retry_in_ms: u64 },
    /// One probe run tests the backend.
    HalfOpen,
}

/// An interrupt was raised: the handler it started, or none when it merged into waiting handlers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterruptRaised {
    pub kind: InterruptKind,
    pub handler: Option<Pid>,
}
