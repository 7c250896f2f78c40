//! One handler per verb of the protocol, each in the file named after it: a handler validates the
//! request, applies it to the kernel state, and writes the reply (or a stream of replies).

mod interrupt;
mod interrupts;
mod list;
mod output;
mod renice;
mod sched;
mod signal;
mod stat;
mod submit;
mod wait;

use super::Kernel;
use super::journal::writer::Ack;
use super::server::{Conn, Peer};
use crate::proto::{CodecError, Failure, FailureKind, Reply, Request};
use std::sync::Arc;

/// Handles one request.
pub async fn handle(
    kernel: &Arc<Kernel>,
    peer: Peer,
    request: Request,
    conn: &mut Conn,
) -> Result<(), CodecError> {
    match request {
        Request::Hello(_) => reply(conn, Err(bad_request("hello was already exchanged"))).await,
        Request::Submit(r) => submit::handle(kernel, peer, r, conn).await,
        Request::List(r) => list::handle(kernel, peer, r, conn).await,
        Request::Signal(r) => signal::handle(kernel, peer, r, conn).await,
        Request::Renice(r) => renice::handle(kernel, peer, r, conn).await,
        Request::Wait(r) => wait::handle(kernel, peer, r, conn).await,
        Request::Output(r) => output::handle(kernel, peer, r, conn).await,
        Request::Interrupt(r) => interrupt::handle(kernel, peer, r, conn).await,
        Request::Sched(r) => sched::handle(kernel, peer, r, conn).await,
        Request::Interrupts(r) => interrupts::handle(kernel, peer, r, conn).await,
        Request::Stat(r) => stat::handle(kernel, peer, r, conn).await,
        Request::SchedInfo(r) => sched::handle_info(kernel, peer, r, conn).await,
    }
}

async fn reply(conn: &mut Conn, reply: Reply) -> Result<(), CodecError> {
    conn.write(&reply).await
}

fn bad_request(message: impl Into<String>) -> Failure {
    Failure::new(FailureKind::BadRequest, message)
}

/// Whether `peer` may raise priority above the default (nice below 0): root or the kernel's own user.
fn privileged(kernel: &Kernel, peer: Peer) -> bool {
    peer.uid == 0 || peer.uid == kernel.owner_uid
}

/// Checks a nice value: in range, and below 0 only for a privileged peer.
fn check_nice(kernel: &Kernel, peer: Peer, nice: i8) -> Result<(), Failure> {
    if !(-20..=19).contains(&nice) {
        return Err(bad_request(format!(
            "nice {nice} is out of range (-20 to 19)"
        )));
    }
    if nice < 0 && !privileged(kernel, peer) {
        return Err(Failure::new(
            FailureKind::PermissionDenied,
            "only root or the kernel's user may set nice below 0",
        ));
    }
    Ok(())
}

/// Waits until what a verb changed is durable; the failure says what could not be recorded.
async fn durable(ack: Ack, what: &str) -> Result<(), Failure> {
    ack.durable().await.map_err(|e| {
        Failure::new(
            FailureKind::Unavailable,
            format!("{what} took effect, but could not be recorded durably: {e}"),
        )
    })
}
