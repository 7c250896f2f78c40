//! One handler per verb of the protocol, each in the file named after it: a handler validates the
//! request and asks the kernel state for the transition (every transition lives in
//! [`KernelState`](super::state::KernelState)). A unary verb returns its one reply, written here in
//! one place; a verb that streams (`Submit` with its output, `List` in pages, `Output`, `Wait`
//! watching for its client to leave) writes its own frames.

mod backends;
mod free;
mod interrupt;
mod interrupts;
mod links;
mod list;
mod origins;
mod output;
mod quota;
pub(crate) mod renice;
mod sched;
pub(crate) mod signal;
mod signal_group;
pub(crate) mod stat;
pub(crate) mod submit;
mod submit_linked;
mod subscribe;
mod wait;

pub use list::pages as list_pages;

use super::Kernel;
use super::journal::writer::Ack;
use super::server::{Conn, Peer};
use crate::kernel::syscalls::Mode as Syscalls;
use crate::proto::{CodecError, Failure, FailureKind, ProcessType, Reply, Request};
use std::sync::Arc;

/// Handles one request.
pub async fn handle(
    kernel: &Arc<Kernel>,
    peer: Peer,
    request: Request,
    conn: &mut Conn,
) -> Result<(), CodecError> {
    let unary = match request {
        Request::Submit(r) => return submit::handle(kernel, peer, r, conn).await,
        Request::List(r) => return list::handle(kernel, peer, r, conn).await,
        Request::Wait(r) => return wait::handle(kernel, peer, r, conn).await,
        Request::Output(r) => return output::handle(kernel, peer, r, conn).await,
        Request::SubmitAsk(r) => return submit::handle_ask(kernel, peer, r, conn).await,
        Request::Subscribe(r) => return subscribe::handle(kernel, peer, r, conn).await,
        Request::SubmitBy(r) => return submit::handle_by(kernel, peer, r, conn).await,
        Request::Hello(_) => Err(bad_request("hello was already exchanged")),
        Request::Signal(r) => signal::handle(kernel, peer, r).await,
        Request::Renice(r) => renice::handle(kernel, peer, r).await,
        Request::Interrupt(r) => interrupt::handle(kernel, peer, r),
        Request::Sched(r) => sched::handle(kernel, peer, r),
        Request::Interrupts(r) => interrupts::handle(kernel, peer, r),
        Request::Stat(r) => stat::handle(kernel, peer, r),
        Request::SchedInfo(r) => sched::handle_info(kernel, peer, r),
        Request::Origins(r) => origins::handle(kernel, peer, r),
        Request::Free(r) => free::handle(kernel, r),
        Request::Backends(r) => backends::handle(kernel, r),
        Request::SubmitLinked(r) => {
            return submit_linked::handle(kernel, peer, r, Syscalls::Off, conn).await;
        }
        Request::SignalGroup(r) => signal_group::handle(kernel, peer, r).await,
        Request::Links(r) => links::handle(kernel, peer, r),
        Request::Quota(r) => quota::handle(kernel, r),
        Request::SubmitSyscalls(r) => {
            return submit_linked::handle(kernel, peer, r, Syscalls::On, conn).await;
        }
        Request::SubmitMustCall(r) => {
            return submit_linked::handle(kernel, peer, r, Syscalls::MustCall, conn).await;
        }
    };
    reply(conn, unary).await
}

async fn reply(conn: &mut Conn, reply: Reply) -> Result<(), CodecError> {
    conn.write(&reply).await
}

fn bad_request(message: impl Into<String>) -> Failure {
    Failure::new(FailureKind::BadRequest, message)
}

/// Whether `peer` may raise priority above the default (nice below 0, a SYSTEM process): root or the
/// kernel's own user, never another member of a shared kernel's group.
pub(crate) fn privileged(kernel: &Kernel, peer: Peer) -> bool {
    peer.uid == 0 || peer.uid == kernel.owner_uid
}

/// Checks a nice value: in range, and below 0 only for a privileged peer.
pub(crate) fn check_nice(kernel: &Kernel, peer: Peer, nice: i8) -> Result<(), Failure> {
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

/// Checks that `peer` may create a process of `process_type`: SYSTEM outranks every other type, so
/// like nice below 0 it is for a privileged peer only.
pub(crate) fn check_type(
    kernel: &Kernel,
    peer: Peer,
    process_type: ProcessType,
) -> Result<(), Failure> {
    if process_type == ProcessType::System && !privileged(kernel, peer) {
        return Err(Failure::new(
            FailureKind::PermissionDenied,
            "only root or the kernel's user may start SYSTEM processes",
        ));
    }
    Ok(())
}
