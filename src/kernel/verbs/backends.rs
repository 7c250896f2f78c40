//! `Backends`: every backend of the machine — its slots, models, health and rate (`sched`), and
//! which of the kernel's slots are whose (`ps -l`). Any user may ask; it names no process.

use super::Kernel;
use crate::proto::{BackendsRequest, Reply, Response};
use std::sync::Arc;

pub fn handle(kernel: &Arc<Kernel>, _req: BackendsRequest) -> Reply {
    let mut table = kernel.read(|s| s.backend_table());
    for (i, row) in table.backends.iter_mut().enumerate() {
        if let Some(kind) = kernel.client(i).and_then(|c| c.kind()) {
            row.kind = kind.name().to_string();
        }
    }
    Ok(Response::Backends(table))
}
