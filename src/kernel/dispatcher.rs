//! The dispatcher: one task per process on a slot, streaming its generation from the backend into the
//! process table. The task itself decides nothing; the state decides at every token whether the run
//! goes on (quantum boundaries, signals) and cancels it through the run's token. Cancelling drops the
//! HTTP stream at once, so the server stops generating.
//!
//! One question is asked here because it takes a round trip: when the backend fails a request in a
//! way that may be the request's own (an HTTP 500), the task asks the backend's health before it
//! reports, so the state can tell one bad request from a backend that is down (see
//! [`super::circuit`]).

use super::Kernel;
use super::memory;
use super::state::{Launch, RunOutcome};
use crate::llm::{Backend, StreamEvent};
use crate::proto::Pid;
use std::sync::Arc;

/// Runs one generation to its end and reports how it ended.
pub async fn run_generation(kernel: Arc<Kernel>, launch: Launch) {
    let Launch {
        pid,
        run_id,
        generation,
        cancel,
        swap,
        backend,
    } = launch;
    let Some(backend) = kernel.client(backend) else {
        kernel.update(|s| s.on_run_end(pid, run_id, RunOutcome::Cancelled));
        return;
    };
    let outcome = tokio::select! {
        biased;
        _ = cancel.cancelled() => RunOutcome::Cancelled,
        outcome = async {
            if !swap.is_empty() {
                memory::swap::carry_out(&kernel, &backend, pid, generation.slot, &swap).await;
            }
            run(&kernel, &backend, pid, run_id, &generation).await
        } => outcome,
    };
    tracing::debug!(%pid, run_id, ?outcome, "run ended");
    kernel.update(|s| s.on_run_end(pid, run_id, outcome));
}

/// Streams the generation; a failure that may be the request's own is weighed against the backend's
/// health.
async fn run(
    kernel: &Arc<Kernel>,
    backend: &Backend,
    pid: Pid,
    run_id: u64,
    generation: &crate::llm::Generation,
) -> RunOutcome {
    match stream(kernel, backend, pid, run_id, generation).await {
        RunOutcome::Failed(e) if e.may_be_request_specific() => {
            if backend.is_up().await {
                RunOutcome::Rejected(e)
            } else {
                RunOutcome::Failed(e)
            }
        }
        other => other,
    }
}

async fn stream(
    kernel: &Arc<Kernel>,
    backend: &Backend,
    pid: Pid,
    run_id: u64,
    generation: &crate::llm::Generation,
) -> RunOutcome {
    let mut tokens = match backend.open(generation).await {
        Ok(tokens) => tokens,
        Err(e) => return RunOutcome::Failed(e),
    };
    let mut finish_reason = None;
    while let Some(event) = tokens.next().await {
        match event {
            Ok(StreamEvent::Text(text)) => {
                if !kernel.update(|s| s.on_text(pid, run_id, text)) {
                    return RunOutcome::Cancelled;
                }
            }
            Ok(StreamEvent::Usage { prompt_tokens, .. }) => {
                kernel.update(|s| s.on_usage(pid, run_id, prompt_tokens));
            }
            Ok(StreamEvent::Finished { reason }) => finish_reason = Some(reason),
            Ok(StreamEvent::Cached { tokens }) => kernel.update(|s| s.on_cached(pid, tokens)),
            Ok(StreamEvent::Choice(delta)) => {
                if !kernel.update(|s| s.on_choice(pid, run_id, delta)) {
                    return RunOutcome::Cancelled;
                }
            }
            Err(e) => return RunOutcome::Failed(e),
        }
    }
    RunOutcome::Completed { finish_reason }
}
