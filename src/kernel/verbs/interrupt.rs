//! `Interrupt`: raise an interrupt by hand (`interrupt system MESSAGE`, `interrupt timer`), as a
//! signal to the kernel would; answers with the handler process's pid, or none when the raise was
//! coalesced into handlers already waiting at the line's limit. A SYSTEM interrupt starts a SYSTEM
//! process, so only root or the kernel's user may raise one.

use super::{Kernel, Peer, check_type};
use crate::proto::{InterruptKind, InterruptRequest, Interrupted, ProcessType, Reply, Response};
use std::sync::Arc;

pub fn handle(kernel: &Arc<Kernel>, peer: Peer, req: InterruptRequest) -> Reply {
    // The handler runs as the raiser: a SYSTEM interrupt, or a line whose handler is a SYSTEM
    // process, is for those who may start SYSTEM processes.
    let handler_type = kernel.read(|s| {
        let config = &s.config.interrupts;
        match req.kind {
            InterruptKind::System => ProcessType::System,
            InterruptKind::Timer => config.timer.process_type,
            InterruptKind::UserInput => ProcessType::User,
        }
    });
    let raised = check_type(kernel, peer, handler_type)
        .and_then(|()| kernel.raise_interrupt(req.kind, req.message.as_deref(), peer.uid));
    raised.map(|handler| {
        Response::Interrupted(Interrupted {
            kind: req.kind,
            handler,
        })
    })
}
