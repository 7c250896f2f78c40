//! The OpenAI-compatible front door: any OpenAI client (the official SDKs, curl, Open WebUI, …)
//! pointed at llmkernel instead of at the LLM server turns each request into a process that `ps`
//! shows, the scheduler orders and preempts, and `kill`/`nice`/`kill -STOP` control.
//!
//! HTTP/1.1 (axum over hyper) is served on a Unix socket beside the kernel's
//! (`llmkernel-http.sock`, 0600), whose callers are identified by SO_PEERCRED and admitted exactly
//! as `llmsh` is, within the same connection caps ([`door`], [`admitted`]); and, when `[http] listen` says so, on a TCP address, whose callers
//! present `Authorization: Bearer KEY` from a 0600 keys file ([`keys`]) and a `Host` naming the
//! listener (against DNS rebinding). No CORS headers are ever sent, so browsers keep other sites out.
//!
//! Endpoints: `POST /v1/chat/completions` and `POST /v1/completions` (`completions`, streamed by
//! `answer`), `GET /v1/models` (the backend's list), `GET /health`, and the kernel's own under
//! `/v1/processes` (`processes`), and the dashboard at `/` with its event stream `/v1/events`
//! ([`dashboard`]). Every handler reaches the kernel through the same entry points
//! the socket verbs use (their checks, their `KernelState` transitions), never the scheduler itself.
//! Errors take OpenAI's JSON shape (`error`).
//!
//! Beside it, on their own loopback listener ([`metrics_listener`], `[metrics] listen`): the
//! Prometheus metrics ([`metrics`]).

pub mod admitted;
mod answer;
mod completions;
pub mod dashboard;
mod deadline;
pub mod door;
mod error;
pub mod keys;
pub mod metrics;
pub mod metrics_listener;
mod processes;
mod request;
mod structured;
mod syscalls;

use crate::kernel::Kernel;
use axum::Router;
use axum::routing::{get, post};
use std::sync::Arc;

/// What the front door's socket adds to the kernel socket's name (`llmkernel.sock` →
/// `llmkernel-http.sock`, in the same directory; see [`door::socket_path`]).
pub const SOCKET_SUFFIX: &str = "-http.sock";

/// What every handler reaches: the kernel, and how TCP callers are checked.
#[derive(Clone)]
pub struct Door {
    pub(crate) kernel: Arc<Kernel>,
    pub(crate) tcp: Option<Arc<door::TcpRules>>,
}

/// The front door's routes.
pub fn router(door: Door) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(completions::chat))
        .route("/v1/completions", post(completions::text))
        .route("/v1/models", get(completions::models))
        .route("/health", get(completions::health))
        .route("/v1/processes", get(processes::list))
        .route(
            "/v1/processes/{pid}",
            get(processes::one).delete(processes::kill),
        )
        .route("/v1/processes/{pid}/output", get(processes::output))
        .route("/v1/processes/{pid}/signal", post(processes::signal))
        .route("/v1/processes/{pid}/renice", post(processes::renice))
        .route("/v1/events", get(dashboard::events::stream))
        .route("/", get(dashboard::index))
        .route("/dashboard.js", get(dashboard::script))
        .route("/dashboard.css", get(dashboard::style))
        .fallback(error::not_found)
        // A request larger than a wire frame could not be journaled either; the kernel's own
        // prompt limit (at most 3 MiB) is checked after.
        .layer(axum::extract::DefaultBodyLimit::max(
            crate::proto::MAX_FRAME_BYTES,
        ))
        .layer(axum::middleware::from_fn_with_state(
            door.clone(),
            door::identify,
        ))
        // Where a browser presents its key, so not behind the check above (it checks Host itself).
        .route("/login", post(dashboard::login::submit))
        .with_state(door)
}
