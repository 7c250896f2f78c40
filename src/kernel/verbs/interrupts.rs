//! `Interrupts`: the interrupt lines and their counters (`interrupts`), like /proc/interrupts.

use super::{Conn, Kernel, Peer, reply};
use crate::proto::{CodecError, InterruptsRequest, Response};
use std::sync::Arc;

pub async fn handle(
    kernel: &Arc<Kernel>,
    _peer: Peer,
    _req: InterruptsRequest,
    conn: &mut Conn,
) -> Result<(), CodecError> {
    let table = kernel.interrupt_table();
    reply(conn, Ok(Response::InterruptTable(table))).await
}
