//! `Free`: the memory of the machine — each backend's slots and context size, whose conversation each
//! slot's cache holds, and swap use (`free`). Any user may ask; it names pids, not prompts.

use super::Kernel;
use crate::proto::{FreeRequest, Reply, Response};
use std::sync::Arc;

pub fn handle(kernel: &Arc<Kernel>, _req: FreeRequest) -> Reply {
    let backend = kernel.backend();
    let status = kernel.read(|s| s.memory_status(backend.url()));
    Ok(Response::Memory(status))
}
