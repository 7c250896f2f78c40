//! `SubmitLinked`: create a process linked to others (a pipe's reader, a member of a pipeline's
//! group), otherwise exactly as `SubmitAsk` does: the same checks, the same admission, the same
//! reply and output stream. Text the shell read for it (`< FILE`, its standard input) is framed
//! after its prompt here ([`frame_input`]), so the prompt limit and the context admission count it.

use super::submit::{
    AdmittedProcess, Attached, NewProcess, admit, check_room, respond, settle, validate,
};
use super::{Conn, Kernel, Peer, bad_request};
use crate::kernel::state::pipes::NewLink;
use crate::kernel::syscalls::Mode as Syscalls;
use crate::proto::{CodecError, Failure, Pid, SubmitLinkedRequest, frame_input};
use std::sync::Arc;

/// `SubmitLinked`, `SubmitSyscalls` (system calls on, see [`crate::kernel::syscalls`]) and
/// `SubmitMustCall` (the first answer a tool call, [`crate::kernel::syscalls::require_call`]): the
/// same request, `syscalls` saying which it came as.
pub async fn handle(
    kernel: &Arc<Kernel>,
    peer: Peer,
    req: SubmitLinkedRequest,
    syscalls: Syscalls,
    conn: &mut Conn,
) -> Result<(), CodecError> {
    respond(create(kernel, peer, req, syscalls).await, kernel, conn).await
}

async fn create(
    kernel: &Arc<Kernel>,
    peer: Peer,
    req: SubmitLinkedRequest,
    syscalls: Syscalls,
) -> Result<(Pid, Attached), Failure> {
    let SubmitLinkedRequest {
        ask: mut asked,
        input_from,
        input,
        pgid,
        deadline,
    } = req;
    if input.is_some() && input_from.is_some() {
        return Err(bad_request(
            "a process reads either text or another process's output, not both",
        ));
    }
    if let Some(input) = &input {
        asked.submit.prompt = frame_input(&asked.submit.prompt, input);
    }
    let link = NewLink {
        input_from,
        continued_from: asked.continue_from,
        pgid,
    };
    kernel.read(|s| s.check_link(peer.uid, &link))?;
    let mut ask = super::submit::asked(kernel, peer, &asked)?;
    ask.deadline = deadline;
    syscalls.apply(&mut ask);
    let spec = validate(kernel, peer, &asked.submit, &ask)?;
    let new = NewProcess {
        spec,
        ask,
        nice: asked.submit.nice,
    };
    let AdmittedProcess { new, mut admitted } = admit(kernel, new).await?;
    let count_later = admitted.count_later.take();
    let attach = asked.submit.attach;
    let (pid, ack, follower) = kernel.update(|s| {
        check_room(s)?;
        s.check_model(new.ask.model.as_deref())?;
        // Checked again under the lock: the upstream may have been reaped meanwhile.
        s.check_link(peer.uid, &link)?;
        let (pid, ack) = s.create_linked(new.spec, new.ask, new.nice, link);
        s.admitted(pid, &admitted);
        let follower = attach.then(|| s.follow(pid, peer.uid));
        Ok::<_, Failure>((pid, ack, follower))
    })?;
    if let Some(messages) = count_later {
        crate::kernel::memory::admission::count_later(kernel, pid, messages);
    }
    settle(kernel, pid, ack).await?;
    Ok((pid, follower))
}
