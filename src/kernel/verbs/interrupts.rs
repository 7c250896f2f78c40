//! `Interrupts`: the interrupt lines and their counters (`interrupts`), like /proc/interrupts.

use super::{Kernel, Peer};
use crate::proto::{InterruptsRequest, Reply, Response};
use std::sync::Arc;

pub fn handle(kernel: &Arc<Kernel>, _peer: Peer, _req: InterruptsRequest) -> Reply {
    Ok(Response::InterruptTable(kernel.interrupt_table()))
}
