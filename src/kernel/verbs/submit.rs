//! `Submit` and `SubmitAsk`: create a process (`query`). Checks the request against the kernel's
//! limits, adds the process to the table and run queue, acknowledges its pid once its creation is
//! durable, and with `attach` streams its output. The process may start on a slot while its creation
//! is being synced: the backend request and the sync overlap, and no token reaches the client before
//! the pid does. SYSTEM processes, like nice below 0, are for root and the kernel's user; stopped
//! processes hold their place toward `max_queue`. A prompt must fit a slot's context, and an
//! allowance past it is cut (see [`crate::kernel::memory::admission`]). The HTTP front door creates
//! its processes through [`admit`] and [`create_now`] too, so both doors obey the same rules.

use super::{Conn, Kernel, Peer, bad_request, check_nice, check_type, output, reply};
use crate::kernel::journal::writer::Ack;
use crate::kernel::memory::{self, admission::Admitted};
use crate::kernel::process::{Ask, Spec};
use crate::kernel::state::{Follower, KernelState};
use crate::proto::{
    CodecError, Failure, FailureKind, Pid, Response, SubmitAskRequest, SubmitByRequest,
    SubmitRequest, Submitted,
};
use std::sync::Arc;

/// A process to create, as either door asked for it.
pub struct NewProcess {
    pub spec: Spec,
    pub ask: Ask,
    pub nice: i8,
}

/// A process that fits a slot's context (its allowance cut to fit if need be), ready to create.
pub struct AdmittedProcess {
    pub(crate) new: NewProcess,
    pub(crate) admitted: Admitted,
}

/// Checks that `new` fits a slot's context: refuses a prompt that does not, cuts an allowance that
/// would run past it.
pub async fn admit(kernel: &Arc<Kernel>, mut new: NewProcess) -> Result<AdmittedProcess, Failure> {
    let admitted = memory::admission::admit(kernel, &mut new.spec).await?;
    Ok(AdmittedProcess { new, admitted })
}

pub async fn handle(
    kernel: &Arc<Kernel>,
    peer: Peer,
    req: SubmitRequest,
    conn: &mut Conn,
) -> Result<(), CodecError> {
    let ask = Ask {
        origin: Some("llmsh".into()),
        ..Ask::default()
    };
    submit(kernel, peer, &req, ask, conn).await
}

/// `SubmitAsk`: a model, or a follow-up question to a finished process.
pub async fn handle_ask(
    kernel: &Arc<Kernel>,
    peer: Peer,
    req: SubmitAskRequest,
    conn: &mut Conn,
) -> Result<(), CodecError> {
    match asked(kernel, peer, &req) {
        Ok(ask) => submit(kernel, peer, &req.submit, ask, conn).await,
        Err(failure) => reply(conn, Err(failure)).await,
    }
}

/// `SubmitBy`: `SubmitAsk` with a deadline.
pub async fn handle_by(
    kernel: &Arc<Kernel>,
    peer: Peer,
    req: SubmitByRequest,
    conn: &mut Conn,
) -> Result<(), CodecError> {
    match asked(kernel, peer, &req.ask) {
        Ok(ask) => {
            let ask = Ask {
                deadline: Some(req.deadline),
                ..ask
            };
            submit(kernel, peer, &req.ask.submit, ask, conn).await
        }
        Err(failure) => reply(conn, Err(failure)).await,
    }
}

/// What a `SubmitAsk` asks beyond a prompt: the model, or the conversation it follows up.
pub(super) fn asked(
    kernel: &Arc<Kernel>,
    peer: Peer,
    req: &SubmitAskRequest,
) -> Result<Ask, Failure> {
    let mut ask = match req.continue_from {
        Some(pid) => kernel.read(|s| s.follow_up(pid, peer.uid, &req.submit.prompt))?,
        None => Ask::default(),
    };
    if req.model.is_some() {
        ask.model = req.model.clone();
    }
    ask.origin = Some("llmsh".into());
    Ok(ask)
}

async fn submit(
    kernel: &Arc<Kernel>,
    peer: Peer,
    req: &SubmitRequest,
    ask: Ask,
    conn: &mut Conn,
) -> Result<(), CodecError> {
    let created = match validate(kernel, peer, req, &ask) {
        Ok(spec) => {
            let new = NewProcess {
                spec,
                ask,
                nice: req.nice,
            };
            create(kernel, peer, new, req.attach).await
        }
        Err(failure) => Err(failure),
    };
    respond(created, kernel, conn).await
}

/// A created process's follower of its output, when the submit attached.
pub type Attached = Option<Result<Follower, Failure>>;

/// Answers a submit: the failure, or the pid and then, when it attached, the process's output.
pub(super) async fn respond(
    created: Result<(Pid, Attached), Failure>,
    kernel: &Arc<Kernel>,
    conn: &mut Conn,
) -> Result<(), CodecError> {
    match created {
        Err(failure) => reply(conn, Err(failure)).await,
        Ok((pid, follower)) => {
            reply(conn, Ok(Response::Submitted(Submitted { pid }))).await?;
            match follower {
                Some(Ok(follower)) => output::follow(kernel, conn, pid, follower).await,
                Some(Err(failure)) => reply(conn, Err(failure)).await,
                None => Ok(()),
            }
        }
    }
}

/// Creates a checked process and waits until its creation is durable; with `attach`, registers a
/// follower of its output in the same update, so no token is missed.
pub async fn create(
    kernel: &Arc<Kernel>,
    peer: Peer,
    new: NewProcess,
    attach: bool,
) -> Result<(Pid, Attached), Failure> {
    let admitted = admit(kernel, new).await?;
    let created = create_now(kernel, peer, admitted, attach)?;
    settle(kernel, created.pid, created.ack).await?;
    Ok((created.pid, created.follower))
}

/// A process just added to the table, whose creation may not be durable yet.
pub struct Created {
    pub pid: Pid,
    pub ack: Ack,
    pub follower: Attached,
}

/// The first half of [`create`]: adds the process at once. A caller that may be cancelled while
/// the creation is synced (an HTTP handler whose client leaves) takes charge of the process here,
/// before [`settle`].
pub fn create_now(
    kernel: &Arc<Kernel>,
    peer: Peer,
    process: AdmittedProcess,
    attach: bool,
) -> Result<Created, Failure> {
    let AdmittedProcess { new, mut admitted } = process;
    let count_later = admitted.count_later.take();
    let created = kernel.update(|s| {
        // Checked under the same lock as the creation, so concurrent submits cannot overshoot.
        check_room(s)?;
        s.check_model(new.ask.model.as_deref())?;
        let (pid, ack) = s.create_asked(new.spec, new.ask, new.nice);
        s.admitted(pid, &admitted);
        let follower = attach.then(|| s.follow(pid, peer.uid));
        Ok(Created { pid, ack, follower })
    })?;
    if let Some(messages) = count_later {
        memory::admission::count_later(kernel, created.pid, messages);
    }
    Ok(created)
}

/// The second half of [`create`]: waits until the creation is durable, or takes the process back.
pub async fn settle(kernel: &Arc<Kernel>, pid: Pid, ack: Ack) -> Result<(), Failure> {
    if let Err(e) = ack.durable().await {
        return Err(kernel.update(|s| {
            s.abort_creation(pid);
            s.creation_failure(&e)
        }));
    }
    kernel.count_user_input();
    Ok(())
}

/// Checks a request against the kernel's limits and the peer's privileges; the spec to create.
pub fn validate(
    kernel: &Kernel,
    peer: Peer,
    req: &SubmitRequest,
    ask: &Ask,
) -> Result<Spec, Failure> {
    let (max_allowance, max_prompt, default_allowance) = kernel.read(|s| {
        let c = &s.config;
        let allowance = c.type_settings(req.process_type).allowance_tokens;
        (c.max_allowance_tokens, c.max_prompt_bytes, allowance)
    });
    if req.prompt.trim().is_empty() && ask.messages.is_empty() {
        return Err(bad_request("the prompt is empty"));
    }
    let asked_bytes: usize = ask.messages.iter().map(|m| m.content.len()).sum::<usize>()
        + ask.params.as_ref().map_or(0, String::len);
    let prompt_bytes = req.prompt.len() + req.system.as_ref().map_or(0, String::len) + asked_bytes;
    if prompt_bytes > max_prompt {
        return Err(bad_request(format!(
            "the prompt is {prompt_bytes} bytes, over the kernel's limit of {max_prompt}"
        )));
    }
    check_nice(kernel, peer, req.nice)?;
    check_type(kernel, peer, req.process_type)?;
    let allowance = req.max_tokens.unwrap_or(default_allowance);
    if allowance == 0 || allowance > max_allowance {
        return Err(bad_request(format!(
            "max tokens {allowance} is out of range (1 to {max_allowance})"
        )));
    }
    Ok(Spec {
        uid: peer.uid,
        process_type: req.process_type,
        system: req.system.clone().filter(|s| !s.is_empty()),
        prompt: req.prompt.clone(),
        allowance,
    })
}

/// Refuses a new process when `max_queue` processes already hold a place in the queue: those waiting
/// for a slot and those stopped (a CONT puts them back in it). A pipe's reader blocked on its input
/// holds no place.
pub(crate) fn check_room(s: &KernelState) -> Result<(), Failure> {
    let queued = s
        .live()
        .saturating_sub(s.running())
        .saturating_sub(s.blocked());
    if queued >= s.config.max_queue {
        let waiting = s.waiting().min(queued);
        let held = match queued - waiting {
            0 => format!("{queued} processes waiting"),
            stopped => format!("{waiting} processes waiting, {stopped} stopped"),
        };
        let message = format!("run queue is full ({held}); try again later");
        return Err(Failure::new(FailureKind::QueueFull, message));
    }
    Ok(())
}
