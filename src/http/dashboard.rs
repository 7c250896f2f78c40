//! A read-only dashboard at `/` of the metrics listener: one page embedded in the binary (no build
//! step, no CDN) that polls `/api/view` once a second and shows the machine, a timeline of which pid
//! held each slot, and the process table. The listener has no authentication (loopback, like the
//! metrics), so the view shows no prompt and offers no action: killing and renicing stay with the
//! Unix socket, which knows who asks.

use crate::kernel::Kernel;
use crate::kernel::state::KernelState;
use crate::proto::{Pid, ProcessInfo};
use axum::Json;
use axum::extract::State;
use axum::response::Html;
use serde::Serialize;
use std::sync::Arc;

/// The page, embedded at build time.
const INDEX: &str = include_str!("dashboard/index.html");

/// What the page polls.
#[derive(Serialize)]
pub struct View {
    pub machine: Machine,
    pub processes: Vec<ProcessInfo>,
}

#[derive(Serialize)]
pub struct Machine {
    pub cpus: u32,
    pub running: usize,
    pub queue: usize,
    pub policy: String,
    pub context_switches: u64,
    /// The pid on each slot, by slot number.
    pub slots: Vec<Option<u64>>,
}

pub async fn index() -> Html<&'static str> {
    Html(INDEX)
}

pub async fn view<S>(State(state): State<(Arc<Kernel>, S)>) -> Json<View> {
    Json(state.0.read(snapshot))
}

/// The view of `state`: every process, no prompt (nobody is known to be asking).
pub fn snapshot(state: &KernelState) -> View {
    let processes = state
        .list(u32::MAX, true)
        .into_iter()
        .map(|mut p| {
            p.prompt = None;
            p
        })
        .collect();
    View {
        machine: Machine {
            cpus: state.config.cpus,
            running: state.running(),
            queue: state.waiting(),
            policy: state.scheduler().policy_name().to_string(),
            context_switches: state.context_switches,
            slots: state
                .slot_holders()
                .into_iter()
                .map(|p| p.map(|Pid(n)| n))
                .collect(),
        },
        processes,
    }
}
