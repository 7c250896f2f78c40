//! `Signal`: deliver a signal to a process (`kill`). KILL and INT end it now, TERM at its next quantum
//! boundary (at once if it is not running), STOP/TSTP take it off its slot, CONT makes it runnable.
//! Every ending keeps the output produced so far.

use super::{Conn, Kernel, Peer, reply};
use crate::kernel::process::AtBoundary;
use crate::kernel::state::KernelState;
use crate::proto::{
    CodecError, ExitStatus, Failure, Pid, ProcessState, Response, Signal, SignalRequest, Signalled,
};
use std::sync::Arc;

pub async fn handle(
    kernel: &Arc<Kernel>,
    peer: Peer,
    req: SignalRequest,
    conn: &mut Conn,
) -> Result<(), CodecError> {
    let result = kernel.update(|s| {
        let state = deliver(s, peer.uid, req.pid, req.signal)?;
        s.audit(
            peer.uid,
            "signalled",
            req.pid,
            &format!("SIG{}", req.signal),
        );
        Ok(state)
    });
    reply(
        conn,
        result.map(|state| {
            Response::Signalled(Signalled {
                pid: req.pid,
                state,
            })
        }),
    )
    .await
}

/// Applies `signal` to `pid` on behalf of `uid`; returns the process's state afterwards.
pub fn deliver(
    s: &mut KernelState,
    uid: u32,
    pid: Pid,
    signal: Signal,
) -> Result<ProcessState, Failure> {
    let state = s.owned_mut(pid, uid)?.state;
    if state == ProcessState::Zombie {
        return Ok(state); // like kill(2) on a zombie: nothing left to do, not an error
    }
    match signal {
        Signal::Kill | Signal::Int => s.finish(pid, ExitStatus::Killed { signal }, None),
        Signal::Term | Signal::Hup if state == ProcessState::Running => {
            if let Some(p) = s.get_mut(pid) {
                p.at_boundary = AtBoundary::Terminate;
            }
        }
        Signal::Term | Signal::Hup => s.finish(pid, ExitStatus::Killed { signal }, None),
        Signal::Stop | Signal::Tstp => s.stop(pid),
        Signal::Cont => s.resume(pid),
    }
    Ok(s.get(pid).map_or(ProcessState::Zombie, |p| p.state))
}
