//! The backend circuit: whether the kernel sends work to the backend right now. It is the one place
//! that knows the backend's health, so that whatever learns about it (a run's outcome today, a
//! supervisor's "up"/"down" later, through [`BackendCircuit::report_up`] and
//! [`BackendCircuit::report_down`]) feeds the same decision.
//!
//! How the kernel meets a failing backend:
//!
//! - A run that fails with a transient error ([`crate::llm::BackendError::is_transient`]: refused,
//!   unresolvable, HTTP 408/425/429/5xx, no first byte in time, a stall, a reset) does not fail its
//!   process. The process goes back to the run queue with its output kept, so a later run continues
//!   it, and `ps -l` notes why it waits: `backend … refused the connection; retrying in 4s (attempt 3)`.
//! - If the run failed before the backend produced a token, the circuit *opens*: nothing is dispatched
//!   for a backoff of 0.5 s doubling with each failure in a row up to 30 s (each within ±25% at random,
//!   so kernels sharing a server do not retry in step), or longer when the server asked for it with
//!   `Retry-After`. Waiting processes stay in the queue meanwhile instead of burning tries.
//! - When the backoff is over the circuit is *half-open*: one probe run goes out. Its first token (or
//!   any definite answer, even an HTTP 400) closes the circuit and dispatching resumes on every slot;
//!   its failure opens the circuit again with the next backoff. A probe cancelled by a signal lets
//!   another process probe.
//! - A run that fails after it produced tokens proves the backend was answering: the circuit stays
//!   closed and the process is requeued at once, to continue where it stopped. But a backend that
//!   breaks off run after run (a reset after every token) is failing too: from the second such break
//!   in a row without a run ending normally, each break opens the circuit with the next backoff, so
//!   the kernel does not hot-loop against it.
//! - A `Retry-After` longer than `backoff_max_secs` is cut to it: one answer must not stop all
//!   dispatching for a day; the probe after the backoff finds out whether the server is back.
//! - An HTTP error that may be one request's own (a 500 for a prompt the server's chat template
//!   rejects, see [`crate::llm::BackendError::may_be_request_specific`]) is checked against the
//!   server's health (`/health`, else `/models`) before it counts. When the server says it is up, the
//!   circuit stays closed (other processes go on) and only the failing process is tried again, up to
//!   `[backend] request_attempts` tries in all; then it fails with exit 1 and the server's reason.
//!   When the health check fails too, it is the backend's failure like any other.
//! - Each process has a retry budget (`[backend] retry_for_secs`, default 10 minutes, and optionally
//!   `max_retries`), counted from its first failure since it last made progress. Once its next try
//!   would fall outside it, the process fails with the last reason. Processes that never got to try
//!   never fail this way: work resumes by itself whenever the backend comes back.
//! - Non-transient errors (HTTP 400 and other 4xx, a malformed stream, an error the server reports in
//!   the stream) fail the process at once with the reason.
//!
//! Times are kernel-clock milliseconds ([`super::state::KernelState::now_ms`]); the kernel arms a
//! timer for each opening ([`BackendCircuit::wake_at`]) so dispatching resumes without polling.

use crate::config::RetrySettings;
use std::time::Duration;

/// Where the circuit stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CircuitState {
    /// The backend answers: dispatch on every free slot.
    #[default]
    Closed,
    /// The backend failed: nothing is dispatched before `until_ms`.
    Open { until_ms: u64 },
    /// The backoff is over: one probe run (`Some(run id)` once it went out) tests the backend.
    HalfOpen { probe: Option<u64> },
}

/// The backend's health as the dispatcher sees it (see the module docs).
#[derive(Debug, Default)]
pub struct BackendCircuit {
    state: CircuitState,
    /// Failures in a row without an answer in between: the exponent of the backoff.
    failures: u32,
    /// The reopening a timer was last armed for, so that each is armed once.
    armed_for: Option<u64>,
    /// Runs in a row that broke off after producing tokens, without a run ending normally between.
    broken_in_row: u32,
    /// What the backend's last failure was, in the user's words (for the waiting note).
    reason: Option<String>,
}

impl BackendCircuit {
    /// Where the circuit stands now.
    pub fn state(&self) -> CircuitState {
        self.state
    }

    /// Failures in a row since the backend last answered.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Whether a run may be dispatched now. An open circuit whose backoff is over half-opens here.
    pub fn admits(&mut self, now_ms: u64) -> bool {
        if let CircuitState::Open { until_ms } = self.state
            && now_ms >= until_ms
        {
            self.state = CircuitState::HalfOpen { probe: None };
        }
        matches!(
            self.state,
            CircuitState::Closed | CircuitState::HalfOpen { probe: None }
        )
    }

    /// A run was dispatched; in a half-open circuit it is the probe.
    pub fn dispatched(&mut self, run_id: u64) {
        if let CircuitState::HalfOpen {
            probe: probe @ None,
        } = &mut self.state
        {
            *probe = Some(run_id);
        }
    }

    /// The backend answered (a token, a whole answer, or a definite refusal): close the circuit.
    /// While runs keep breaking off mid-stream, the failure count (the backoff's exponent) is kept.
    pub fn answered(&mut self) {
        if self.state == CircuitState::Closed && self.failures == 0 {
            return;
        }
        if self.state != CircuitState::Closed {
            tracing::info!("the backend answers again; dispatching resumes");
        }
        self.state = CircuitState::Closed;
        if self.broken_in_row == 0 {
            self.failures = 0;
        }
    }

    /// A run ended normally (its answer complete, or stopped by the kernel after it made progress):
    /// the backend streams as it should.
    pub fn streamed(&mut self) {
        self.broken_in_row = 0;
        self.answered();
    }

    /// A run broke off after producing tokens. The first such break in a row is let go (the process
    /// continues at once); from the second on, the circuit opens with the next backoff. Returns when
    /// the backend may be tried again, if it opened.
    pub fn broke_off(&mut self, settings: &RetrySettings, now_ms: u64) -> Option<u64> {
        self.broken_in_row = self.broken_in_row.saturating_add(1);
        (self.broken_in_row > 1).then(|| self.failed(settings, None, now_ms))
    }

    /// A run failed before the backend produced anything. Opens the circuit (or keeps it open) and
    /// returns when the backend may be tried again. A failure while already open comes from a run
    /// that went out before the opening: it does not lengthen the backoff, but its `Retry-After` is
    /// honoured. `Retry-After` is honoured up to `backoff_max`.
    pub fn failed(
        &mut self,
        settings: &RetrySettings,
        retry_after: Option<Duration>,
        now_ms: u64,
    ) -> u64 {
        let cap_ms = settings.backoff_max.as_millis() as u64;
        let asked_ms = retry_after.map_or(0, |d| (d.as_millis() as u64).min(cap_ms));
        let until_ms = match self.state {
            CircuitState::Open { until_ms } => until_ms.max(now_ms.saturating_add(asked_ms)),
            _ => {
                self.failures = self.failures.saturating_add(1);
                let wait_ms = backoff_ms(settings, self.failures, fastrand::f64()).max(asked_ms);
                now_ms.saturating_add(wait_ms)
            }
        };
        self.state = CircuitState::Open { until_ms };
        until_ms
    }

    /// A run ended without a verdict on the backend (cancelled by a signal, preemption, shutdown):
    /// if it was the probe, another process may probe.
    pub fn run_gone(&mut self, run_id: u64) {
        if self.state
            == (CircuitState::HalfOpen {
                probe: Some(run_id),
            })
        {
            self.state = CircuitState::HalfOpen { probe: None };
        }
    }

    /// Someone who knows (a supervisor that just started the server) says the backend is up:
    /// dispatch at once, with the backoff reset.
    pub fn report_up(&mut self) {
        self.state = CircuitState::Closed;
        self.failures = 0;
    }

    /// Someone who knows says the backend is down: hold dispatching for the next backoff. Returns
    /// when the backend may be tried again.
    pub fn report_down(&mut self, settings: &RetrySettings, now_ms: u64) -> u64 {
        self.reason = None;
        self.failed(settings, None, now_ms)
    }

    /// Remembers what the failure that opened the circuit was, for [`BackendCircuit::waiting_note`].
    pub fn set_reason(&mut self, reason: String) {
        self.reason = Some(reason);
    }

    /// Why the queue is held, for a process that has no failure of its own to tell (it never got to
    /// try): `backend … refused the connection; retrying in 4s (attempt 3)`. `None` while closed.
    pub fn waiting_note(&self, backend_url: &str, now_ms: u64) -> Option<String> {
        let reason = match &self.reason {
            Some(reason) => reason.clone(),
            None => format!("backend {backend_url} is not available"),
        };
        let attempt = self.failures.saturating_add(1);
        match self.state {
            CircuitState::Closed => None,
            CircuitState::Open { until_ms } if until_ms > now_ms => {
                let wait = crate::kernel::process::seconds(until_ms - now_ms);
                Some(format!("{reason}; retrying in {wait} (attempt {attempt})"))
            }
            CircuitState::Open { .. } | CircuitState::HalfOpen { .. } => {
                Some(format!("{reason}; retrying (attempt {attempt})"))
            }
        }
    }

    /// When a timer should wake the dispatcher: the end of a backoff not yet armed for. Each
    /// reopening is returned once.
    pub fn wake_at(&mut self) -> Option<u64> {
        let CircuitState::Open { until_ms } = self.state else {
            return None;
        };
        if self.armed_for == Some(until_ms) {
            return None;
        }
        self.armed_for = Some(until_ms);
        Some(until_ms)
    }
}

/// The backoff after `failures` failures in a row: the initial wait doubled for each failure after
/// the first, capped, then scaled by a factor in 0.75..1.25 drawn from `unit` (in 0..1).
pub fn backoff_ms(settings: &RetrySettings, failures: u32, unit: f64) -> u64 {
    let initial = settings.backoff_initial.as_millis() as f64;
    let cap = settings.backoff_max.as_millis() as f64;
    let doublings = failures.saturating_sub(1).min(62) as i32;
    let base = (initial * 2f64.powi(doublings)).min(cap);
    (base * (0.75 + 0.5 * unit.clamp(0.0, 1.0))).round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> RetrySettings {
        RetrySettings {
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            ..RetrySettings::default()
        }
    }

    #[test]
    fn backoff_doubles_from_the_initial_wait_up_to_the_cap_within_the_jitter() {
        let s = settings();
        let middle: Vec<u64> = (1..=9).map(|n| backoff_ms(&s, n, 0.5)).collect();
        assert_eq!(
            middle,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
        assert_eq!(backoff_ms(&s, 1, 0.0), 375);
        assert_eq!(backoff_ms(&s, 1, 1.0), 625);
        assert_eq!(backoff_ms(&s, u32::MAX, 1.0), 37500);
    }

    #[test]
    fn a_failure_opens_the_circuit_until_the_backoff_is_over_then_one_probe_goes_out() {
        let s = settings();
        let mut c = BackendCircuit::default();
        assert!(c.admits(0));
        let until = c.failed(&s, None, 1000);
        assert!((1375..=1625).contains(&until), "{until}");
        assert!(!c.admits(until - 1));
        assert_eq!(c.wake_at(), Some(until));
        assert_eq!(c.wake_at(), None, "each opening arms one timer");
        assert!(c.admits(until));
        c.dispatched(7);
        assert!(!c.admits(until), "one probe at a time");
        c.run_gone(7);
        assert!(c.admits(until), "a cancelled probe lets another probe");
        c.dispatched(8);
        c.answered();
        assert_eq!(c.state(), CircuitState::Closed);
        assert!(c.admits(until));
        c.dispatched(9);
        assert!(c.admits(until), "a closed circuit has no probe");
    }

    #[test]
    fn a_failed_probe_opens_the_circuit_for_twice_as_long() {
        let s = settings();
        let mut c = BackendCircuit::default();
        let first = c.failed(&s, None, 0);
        assert!(c.admits(first));
        c.dispatched(1);
        let second = c.failed(&s, None, first);
        assert!((first + 750..=first + 1250).contains(&second), "{second}");
        assert_eq!(c.failures(), 2);
    }

    #[test]
    fn retry_after_is_honoured_and_late_failures_do_not_lengthen_the_backoff() {
        let s = settings();
        let mut c = BackendCircuit::default();
        assert_eq!(c.failed(&s, Some(Duration::from_secs(5)), 0), 5000);
        assert_eq!(
            c.failed(&s, None, 10),
            5000,
            "a run from before the opening"
        );
        assert_eq!(c.failures(), 1);
        assert_eq!(c.failed(&s, Some(Duration::from_secs(7)), 10), 7010);
    }

    #[test]
    fn a_huge_retry_after_is_cut_to_the_longest_backoff() {
        let s = settings();
        let mut c = BackendCircuit::default();
        let day = Duration::from_secs(100_000);
        assert_eq!(c.failed(&s, Some(day), 0), 30_000);
        assert_eq!(c.failed(&s, Some(day), 10), 30_010);
    }

    #[test]
    fn runs_breaking_off_in_a_row_back_off_more_and_more_until_one_streams() {
        let s = settings();
        let mut c = BackendCircuit::default();
        assert_eq!(c.broke_off(&s, 0), None, "the first break is let go");
        c.answered();
        let mut last_wait = 0;
        for n in 1..=4 {
            let until = c.broke_off(&s, 0).expect("opens");
            assert!(until > last_wait, "break {n}: {until} after {last_wait}");
            last_wait = until;
            assert!(c.admits(until));
            c.dispatched(n);
            c.answered(); // the next run's first token
            assert_eq!(c.state(), CircuitState::Closed);
        }
        assert_eq!(
            c.failures(),
            4,
            "tokens between breaks do not reset the backoff"
        );
        c.streamed();
        assert_eq!(c.failures(), 0);
        assert_eq!(
            c.broke_off(&s, 0),
            None,
            "a normal run starts the count again"
        );
    }

    #[test]
    fn the_waiting_note_says_why_and_when_while_open() {
        let s = settings();
        let mut c = BackendCircuit::default();
        assert_eq!(c.waiting_note("http://b/v1", 0), None);
        c.failed(&s, Some(Duration::from_secs(4)), 0);
        c.set_reason("backend http://b/v1 refused the connection".into());
        assert_eq!(
            c.waiting_note("http://b/v1", 0).as_deref(),
            Some("backend http://b/v1 refused the connection; retrying in 4s (attempt 2)")
        );
        c.report_down(&s, 10);
        let note = c.waiting_note("http://b/v1", 4000).unwrap_or_default();
        assert!(
            note.starts_with("backend http://b/v1 is not available; retrying"),
            "{note}"
        );
    }

    #[test]
    fn reports_from_outside_open_and_close_the_circuit() {
        let s = settings();
        let mut c = BackendCircuit::default();
        let until = c.report_down(&s, 0);
        assert!(!c.admits(until - 1));
        c.report_up();
        assert!(c.admits(0));
        assert_eq!(c.failures(), 0);
    }
}
