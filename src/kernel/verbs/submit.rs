//! `Submit`: create a process (`query`). Checks the request against the kernel's limits, adds the
//! process to the table and run queue, acknowledges its pid once its creation is durable, and with
//! `attach` streams its output. The process may start on a slot while its creation is being synced:
//! the backend request and the sync overlap, and no token reaches the client before the pid does.
//! SYSTEM processes, like nice below 0, are for root and the kernel's user; stopped processes hold
//! their place toward `max_queue`. A prompt must fit a slot's context, and an allowance past it is
//! cut (see [`crate::kernel::memory::admission`]).

use super::{Conn, Kernel, Peer, bad_request, check_nice, check_type, output, reply};
use crate::kernel::memory;
use crate::kernel::process::Spec;
use crate::kernel::state::KernelState;
use crate::proto::{CodecError, Failure, FailureKind, Response, SubmitRequest, Submitted};
use std::sync::Arc;

pub async fn handle(
    kernel: &Arc<Kernel>,
    peer: Peer,
    req: SubmitRequest,
    conn: &mut Conn,
) -> Result<(), CodecError> {
    let admitted = match validate(kernel, peer, &req) {
        Ok(mut spec) => memory::admission::admit(kernel, &mut spec)
            .await
            .map(|admitted| (spec, admitted)),
        Err(failure) => Err(failure),
    };
    let created = admitted.and_then(|(spec, admitted)| {
        kernel.update(|s| {
            // Checked under the same lock as the creation, so concurrent submits cannot overshoot.
            check_room(s)?;
            let (pid, ack) = s.create_acked(spec, req.nice);
            s.admitted(pid, &admitted);
            let follower = req.attach.then(|| s.follow(pid, peer.uid));
            Ok((pid, ack, follower))
        })
    });
    let created = match created {
        Ok((pid, ack, follower)) => match ack.durable().await {
            Ok(()) => Ok((pid, follower)),
            Err(e) => Err(kernel.update(|s| {
                s.abort_creation(pid);
                s.creation_failure(&e)
            })),
        },
        Err(failure) => Err(failure),
    };
    match created {
        Err(failure) => reply(conn, Err(failure)).await,
        Ok((pid, follower)) => {
            kernel.count_user_input();
            reply(conn, Ok(Response::Submitted(Submitted { pid }))).await?;
            match follower {
                Some(Ok(follower)) => output::follow(kernel, conn, pid, follower).await,
                Some(Err(failure)) => reply(conn, Err(failure)).await,
                None => Ok(()),
            }
        }
    }
}

fn validate(kernel: &Kernel, peer: Peer, req: &SubmitRequest) -> Result<Spec, Failure> {
    let (max_allowance, max_prompt, default_allowance) = kernel.read(|s| {
        let c = &s.config;
        let allowance = c.type_settings(req.process_type).allowance_tokens;
        (c.max_allowance_tokens, c.max_prompt_bytes, allowance)
    });
    if req.prompt.trim().is_empty() {
        return Err(bad_request("the prompt is empty"));
    }
    let prompt_bytes = req.prompt.len() + req.system.as_ref().map_or(0, String::len);
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
/// for a slot and those stopped (a CONT puts them back in it).
fn check_room(s: &KernelState) -> Result<(), Failure> {
    let queued = s.live().saturating_sub(s.running());
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
