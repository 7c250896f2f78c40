//! The end of a run: the slot is released, the backend circuit learns what the run says about the
//! backend, and the process moves on to exactly one next state: finished (the answer is complete or
//! the allowance is reached), failed (a definite error, or a transient one past the retry budget),
//! or waiting again (preempted, or waiting out a transient failure with its output kept). The policy
//! for failures is in [`crate::kernel::circuit`].

use super::{KernelState, RunOutcome};
use crate::kernel::journal::record::Record;
use crate::kernel::process::{Retry, seconds};
use crate::llm::BackendError;
use crate::proto::{ExitStatus, Pid, ProcessState};

impl KernelState {
    /// A run task ended: release its slot and move the process on.
    pub fn on_run_end(&mut self, pid: Pid, run_id: u64, outcome: RunOutcome) {
        let now = self.now_ms();
        let Some(p) = self.table.get_mut(&pid) else {
            return;
        };
        let Some(run) = p.run.take_if(|r| r.id == run_id) else {
            return;
        };
        let elapsed = run.started.elapsed();
        p.cpu_ms += elapsed.as_millis() as u64;
        self.rates.record_stint(run.tokens, elapsed);
        if let Some(slot) = self.slots.get_mut(run.slot as usize) {
            *slot = None;
        }
        // With several backends a failing one leaves the pool; its processes go on elsewhere at once.
        let moved = match &outcome {
            RunOutcome::Failed(e) if e.is_transient() => {
                self.backend_failed(run.slot, e.to_string()).is_some()
            }
            _ => false,
        };
        let retry_at = if moved {
            None
        } else {
            self.judge_backend(run_id, run.tokens, &outcome, now)
        };
        let Some(p) = self.table.get_mut(&pid) else {
            return;
        };
        if p.state == ProcessState::Zombie && p.collected {
            self.table.remove(&pid);
            self.record(Record::Reaped { pid });
            return;
        }
        match p.state {
            ProcessState::Running => {}
            // Continued while this run was still ending: it queues now that the slot is free.
            ProcessState::Waiting => {
                self.enqueue(pid);
                let _ = self.record_state(pid);
                return;
            }
            // Stopped, or ended by a signal: record what the run produced before it let go.
            ProcessState::Stopped => {
                let _ = self.record_state(pid);
                return;
            }
            _ => return,
        }
        if p.remaining_tokens() == 0 {
            let note = p.allowance_note();
            return self.finish(pid, ExitStatus::Finished, Some(note));
        }
        match outcome {
            // `length` before the allowance: the server met the end of the slot's context.
            RunOutcome::Completed { finish_reason }
                if finish_reason.as_deref() == Some("length") =>
            {
                let note = self.context_full(pid);
                self.finish(pid, ExitStatus::Finished, note);
            }
            // A process with system calls that ended its answer with calls has them carried out.
            RunOutcome::Completed { .. } if self.trap(pid) => {}
            RunOutcome::Completed { .. } => self.finish(pid, ExitStatus::Finished, None),
            RunOutcome::Failed(_) if moved => {
                self.enqueue(pid);
                self.record_state(pid);
            }
            RunOutcome::Failed(e) if e.is_transient() => {
                self.retry_later(pid, &e, retry_at.unwrap_or(now), now);
            }
            RunOutcome::Rejected(e) => self.retry_request(pid, &e, now),
            RunOutcome::Failed(e) => {
                let reason = e.to_string();
                let status = ExitStatus::Failed {
                    reason: reason.clone(),
                };
                self.finish(pid, status, Some(reason));
            }
            // Preempted at a quantum boundary, or shut down: back to waiting with the output kept.
            RunOutcome::Cancelled => {
                self.enqueue(pid);
                self.record_state(pid);
            }
        }
    }

    /// Tells the circuit what a run's end says about the backend. Returns when the backend may be
    /// tried again if the run failed transiently before producing anything.
    fn judge_backend(
        &mut self,
        run_id: u64,
        tokens: u32,
        outcome: &RunOutcome,
        now: u64,
    ) -> Option<u64> {
        match outcome {
            RunOutcome::Failed(e) if tokens == 0 && e.is_transient() => {
                let retry_after = e.retry_after();
                let until = self.circuit.failed(&self.config.retry, retry_after, now);
                self.circuit.set_reason(e.to_string());
                tracing::warn!(
                    "{e}; holding dispatch for {} (failure {} in a row)",
                    seconds(until.saturating_sub(now)),
                    self.circuit.failures()
                );
                Some(until)
            }
            // The stream broke off after tokens: let one go, back off from the second in a row.
            RunOutcome::Failed(e) if e.is_transient() => {
                let until = self.circuit.broke_off(&self.config.retry, now);
                if let Some(until) = until {
                    self.circuit.set_reason(e.to_string());
                    tracing::warn!(
                        "{e}; runs keep breaking off, holding dispatch for {}",
                        seconds(until.saturating_sub(now))
                    );
                }
                until
            }
            // The server answered, if only to refuse the request (its health check said it is up).
            RunOutcome::Failed(_) | RunOutcome::Rejected(_) => {
                self.circuit.answered();
                None
            }
            RunOutcome::Completed { .. } => {
                self.circuit.streamed();
                None
            }
            RunOutcome::Cancelled => {
                if tokens > 0 {
                    self.circuit.streamed();
                }
                self.circuit.run_gone(run_id);
                None
            }
        }
    }

    /// Puts a process whose request the backend failed on its own (while up) straight back in the
    /// queue, holding no one else up; or fails it once it has had `request_attempts` tries.
    fn retry_request(&mut self, pid: Pid, error: &BackendError, now: u64) {
        let attempts = self.config.retry.request_attempts.max(1);
        let Some(p) = self.table.get_mut(&pid) else {
            return;
        };
        let retry = p.retry.get_or_insert(Retry {
            failures: 0,
            since_ms: now,
            at_ms: now,
            reason: String::new(),
            rejections: 0,
        });
        retry.rejections = retry.rejections.saturating_add(1);
        retry.failures = retry.failures.saturating_add(1);
        retry.at_ms = now;
        retry.reason = error.to_string();
        if retry.rejections >= attempts {
            let mut reason = retry.reason.clone();
            if retry.rejections > 1 {
                reason.push_str(&format!(" (gave up after {} tries)", retry.rejections));
            }
            let status = ExitStatus::Failed {
                reason: reason.clone(),
            };
            return self.finish(pid, status, Some(reason));
        }
        tracing::info!(%pid, "the backend is up but failed this request: {}", retry.note(now));
        self.enqueue(pid);
        self.record_state(pid);
    }

    /// Puts a process that met a transient backend failure back in the queue, output kept, to be
    /// tried again at `retry_at`; or fails it when that falls outside its retry budget.
    fn retry_later(&mut self, pid: Pid, error: &BackendError, retry_at: u64, now: u64) {
        let settings = self.config.retry;
        let Some(p) = self.table.get_mut(&pid) else {
            return;
        };
        let retry = p.retry.get_or_insert(Retry {
            failures: 0,
            since_ms: now,
            at_ms: retry_at,
            reason: String::new(),
            rejections: 0,
        });
        retry.failures = retry.failures.saturating_add(1);
        retry.at_ms = retry_at;
        retry.reason = error.to_string();
        let out_of_tries = settings.max_retries.is_some_and(|m| retry.failures > m);
        let budget_ms = settings.retry_for.as_millis() as u64;
        if out_of_tries || retry_at.saturating_sub(retry.since_ms) > budget_ms {
            let mut reason = retry.reason.clone();
            if retry.failures > 1 {
                let spent = seconds(now.saturating_sub(retry.since_ms));
                reason.push_str(&format!(
                    " (gave up after {} tries in {spent})",
                    retry.failures
                ));
            }
            let status = ExitStatus::Failed {
                reason: reason.clone(),
            };
            return self.finish(pid, status, Some(reason));
        }
        tracing::info!(%pid, "{}", retry.note(now));
        self.enqueue(pid);
        self.record_state(pid);
    }
}
