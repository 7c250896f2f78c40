//! The kernel's metrics in the Prometheus text format, made by the Prometheus project's client crate
//! (no hand-written formatting). Counters and histograms are fed by the event bus's tracker (a
//! [`Recorder`]), so they count whether or not anyone subscribes; gauges are read from the state at
//! each scrape. The names, all prefixed `llmkernel_`, are documented in llmkernel(8) and the README:
//!
//! - `processes{state,process_type}` gauge: processes in the table by state and type
//! - `queue_length` gauge, `slots` and `slots_busy` gauges
//! - `processes_created_total{process_type}`
//! - `tokens_generated_total{process_type}`, `prompt_tokens_total{process_type}`
//! - `context_switches_total`
//! - `time_to_first_token_seconds{process_type}` histogram: creation to first generated token
//! - `queue_wait_seconds{process_type}` histogram: time in the run queue before each dispatch
//! - `backend_failures_total`, `backend_consecutive_failures` gauge, `backend_circuit{state}` gauge
//!   (1 for the circuit's state: closed, open, half_open)
//! - `journal_syncs_total`, `journal_sync_seconds_total` (their ratio is the mean sync latency)
//! - `scheduling_decision_seconds` histogram: each dispatch pass that put processes on slots

use crate::kernel::events::Recorder;
use crate::kernel::state::KernelState;
use crate::kernel::state::observe::Observed;
use crate::proto::{BackendHealth, Circuit, ProcessState, ProcessType};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabel {
    process_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateTypeLabels {
    state: String,
    process_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CircuitLabel {
    state: String,
}

type Histograms = Family<TypeLabel, Histogram, fn() -> Histogram>;

/// Time to first token: 50 ms to about 100 s in doublings, from a warm slot to a long prefill
/// behind a busy queue.
fn first_token_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.05, 2.0, 12))
}

/// A scheduling decision: 1 µs to about 130 ms in quadruplings, from a short queue to a huge one
/// on a loaded machine.
fn decision_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1e-6, 4.0, 10))
}

/// Queue wait: 10 ms to about 5 minutes in doublings, from a free slot to a long wait behind
/// higher priorities.
fn queue_wait_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 16))
}

fn type_label(t: ProcessType) -> TypeLabel {
    TypeLabel {
        process_type: t.to_string(),
    }
}

fn state_name(s: ProcessState) -> &'static str {
    match s {
        ProcessState::Waiting => "waiting",
        ProcessState::Running => "running",
        ProcessState::Stopped => "stopped",
        ProcessState::Blocked => "blocked",
        ProcessState::Zombie => "zombie",
    }
}

const STATES: [ProcessState; 5] = [
    ProcessState::Waiting,
    ProcessState::Running,
    ProcessState::Stopped,
    ProcessState::Blocked,
    ProcessState::Zombie,
];

/// The registry and its metrics.
pub struct Metrics {
    registry: Registry,
    processes: Family<StateTypeLabels, Gauge>,
    queue_length: Gauge,
    slots: Gauge,
    slots_busy: Gauge,
    created: Family<TypeLabel, Counter>,
    tokens: Family<TypeLabel, Counter>,
    prompt_tokens: Family<TypeLabel, Counter>,
    context_switches: Counter,
    first_token: Histograms,
    queue_wait: Histograms,
    backend_failures: Counter,
    consecutive_failures: Gauge,
    circuit: Family<CircuitLabel, Gauge>,
    journal_syncs: Counter,
    journal_sync_seconds: Counter<f64, AtomicU64>,
    decisions: Histogram,
    /// The consecutive failures last seen, to count new ones.
    last_failures: AtomicU32,
    /// Scrapes set gauges from the state one at a time.
    scrape: Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut m = Metrics {
            registry: Registry::with_prefix("llmkernel"),
            processes: Family::default(),
            queue_length: Gauge::default(),
            slots: Gauge::default(),
            slots_busy: Gauge::default(),
            created: Family::default(),
            tokens: Family::default(),
            prompt_tokens: Family::default(),
            context_switches: Counter::default(),
            first_token: Family::new_with_constructor(first_token_histogram),
            queue_wait: Family::new_with_constructor(queue_wait_histogram),
            backend_failures: Counter::default(),
            consecutive_failures: Gauge::default(),
            circuit: Family::default(),
            journal_syncs: Counter::default(),
            journal_sync_seconds: Counter::default(),
            decisions: decision_histogram(),
            last_failures: AtomicU32::new(0),
            scrape: Mutex::new(()),
        };
        m.register();
        m
    }

    fn register(&mut self) {
        let r = &mut self.registry;
        r.register(
            "processes",
            "Processes in the table by state and type",
            self.processes.clone(),
        );
        r.register(
            "queue_length",
            "Processes waiting for a slot",
            self.queue_length.clone(),
        );
        r.register(
            "slots",
            "Generation slots the kernel time-shares",
            self.slots.clone(),
        );
        r.register(
            "slots_busy",
            "Slots running a process",
            self.slots_busy.clone(),
        );
        r.register(
            "processes_created",
            "Processes created, by type",
            self.created.clone(),
        );
        r.register(
            "tokens_generated",
            "Tokens generated, by type",
            self.tokens.clone(),
        );
        r.register(
            "prompt_tokens",
            "Prompt tokens the backend processed, by type",
            self.prompt_tokens.clone(),
        );
        r.register(
            "context_switches",
            "Processes put back on a slot after leaving one with work left",
            self.context_switches.clone(),
        );
        r.register(
            "time_to_first_token_seconds",
            "From a process's creation to its first token, by type",
            self.first_token.clone(),
        );
        r.register(
            "queue_wait_seconds",
            "Time in the run queue before each dispatch, by type",
            self.queue_wait.clone(),
        );
        r.register(
            "backend_failures",
            "Backend failures (each a failure in a row)",
            self.backend_failures.clone(),
        );
        r.register(
            "backend_consecutive_failures",
            "Backend failures in a row now",
            self.consecutive_failures.clone(),
        );
        r.register(
            "backend_circuit",
            "The backend circuit's state (1 for the current one)",
            self.circuit.clone(),
        );
        r.register(
            "journal_syncs",
            "Journal batches written and synced",
            self.journal_syncs.clone(),
        );
        r.register(
            "journal_sync_seconds",
            "Time spent writing and syncing journal batches",
            self.journal_sync_seconds.clone(),
        );
        r.register(
            "scheduling_decision_seconds",
            "Each dispatch pass that put processes on slots",
            self.decisions.clone(),
        );
    }

    /// Sets the gauges from `state` and returns the whole exposition. Called with the state locked.
    pub fn scrape(&self, state: &KernelState) -> String {
        let _one = self.scrape.lock().unwrap_or_else(|p| p.into_inner());
        self.processes.clear();
        for t in ProcessType::ALL {
            for s in STATES {
                self.processes.get_or_create(&labels(s, t)).set(0);
            }
        }
        for o in state.observe() {
            self.processes
                .get_or_create(&labels(o.state, o.process_type))
                .inc();
        }
        self.queue_length.set(state.waiting() as i64);
        self.slots.set(i64::from(state.config.cpus));
        self.slots_busy.set(state.running() as i64);
        let switches = state.context_switches;
        self.context_switches
            .inc_by(switches.saturating_sub(self.context_switches.get()));
        let health = crate::kernel::events::tracker::health(state);
        self.set_circuit(&health);
        if let Some((batches, nanos)) = state.journal_syncs() {
            self.journal_syncs
                .inc_by(batches.saturating_sub(self.journal_syncs.get()));
            let secs = Duration::from_nanos(nanos).as_secs_f64();
            self.journal_sync_seconds
                .inc_by((secs - self.journal_sync_seconds.get()).max(0.0));
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    fn set_circuit(&self, health: &BackendHealth) {
        let now = match health.circuit {
            Circuit::Closed => "closed",
            Circuit::Open { .. } => "open",
            Circuit::HalfOpen => "half_open",
        };
        for state in ["closed", "open", "half_open"] {
            let label = CircuitLabel {
                state: state.into(),
            };
            self.circuit
                .get_or_create(&label)
                .set(i64::from(state == now));
        }
        self.consecutive_failures.set(i64::from(health.failures));
    }
}

fn labels(s: ProcessState, t: ProcessType) -> StateTypeLabels {
    StateTypeLabels {
        state: state_name(s).into(),
        process_type: t.to_string(),
    }
}

impl Recorder for Metrics {
    fn created(&self, process: &Observed) {
        self.created
            .get_or_create(&type_label(process.process_type))
            .inc();
    }

    fn tokens(&self, process: &Observed, generated: u32, prompt: u32) {
        let label = type_label(process.process_type);
        self.tokens
            .get_or_create(&label)
            .inc_by(u64::from(generated));
        self.prompt_tokens
            .get_or_create(&label)
            .inc_by(u64::from(prompt));
    }

    fn first_token(&self, process: &Observed, after: Duration) {
        let label = type_label(process.process_type);
        self.first_token
            .get_or_create(&label)
            .observe(after.as_secs_f64());
    }

    fn dispatched(&self, process: &Observed, waited_ms: u64) {
        let label = type_label(process.process_type);
        self.queue_wait
            .get_or_create(&label)
            .observe(waited_ms as f64 / 1000.0);
    }

    fn context_switches(&self, _count: u64) {
        // Counted from the state's own counter at each scrape, which misses none.
    }

    fn scheduled(&self, took: Duration) {
        self.decisions.observe(took.as_secs_f64());
    }

    fn backend(&self, health: &BackendHealth) {
        let before = self.last_failures.swap(health.failures, Ordering::Relaxed);
        if health.failures > before {
            self.backend_failures
                .inc_by(u64::from(health.failures - before));
        }
    }
}
