//! `Sched` and `SchedInfo`: show the scheduling policy, or switch it at run time. Switching re-ranks
//! the waiting processes at once; running ones are weighed by the new policy at their next quantum
//! boundary. Only root or the kernel's own user may switch (it changes everyone's service).
//! `SchedInfo` answers with what switching processes has done and cost, and the slots kept for
//! interactive work, and the server's own slot count once known (for the `--cpus` warning); `Sched`
//! keeps its older answer for older shells.

use super::{Kernel, Peer, bad_request, privileged};
use crate::config::PolicyKind;
use crate::kernel::make_policy;
use crate::kernel::state::KernelState;
use crate::proto::{Failure, FailureKind, Reply, Response, SchedInfo, SchedRequest, SchedStatus};
use std::sync::Arc;

pub fn handle(kernel: &Arc<Kernel>, peer: Peer, req: SchedRequest) -> Reply {
    switch_if_asked(kernel, peer, &req)?;
    Ok(Response::Sched(kernel.read(status)))
}

pub fn handle_info(kernel: &Arc<Kernel>, peer: Peer, req: SchedRequest) -> Reply {
    switch_if_asked(kernel, peer, &req)?;
    let server_slots = kernel.backend().slots();
    let info = kernel.read(|s| {
        let counters = s.switch_counters();
        let (reserved_slots, reservation_active) = s.reservation();
        SchedInfo {
            status: status(s),
            switches: counters.switches,
            urgent_switches: counters.urgent,
            resumes_measured: counters.resumes_measured,
            reread_prompt_tokens: counters.reread_prompt_tokens,
            reserved_slots,
            reservation_active,
            interactive_type: s.config.scheduler.interactive_type,
            reservation_window_ms: s.config.scheduler.reservation_window.as_millis() as u64,
            server_slots,
        }
    });
    Ok(Response::SchedInfo(info))
}

fn status(s: &KernelState) -> SchedStatus {
    SchedStatus {
        policy: s.scheduler().policy_name().to_string(),
        available: PolicyKind::ALL.map(|p| p.name().to_string()).to_vec(),
        quantum_tokens: s.config.quantum_tokens,
        cpus: s.config.cpus,
        context_switches: s.context_switches,
    }
}

fn switch_if_asked(kernel: &Arc<Kernel>, peer: Peer, req: &SchedRequest) -> Result<(), Failure> {
    let Some(name) = &req.policy else {
        return Ok(());
    };
    switch(kernel, peer, name)?;
    tracing::info!(uid = peer.uid, policy = %name, "scheduling policy switched");
    Ok(())
}

fn switch(kernel: &Arc<Kernel>, peer: Peer, name: &str) -> Result<(), Failure> {
    let kind: PolicyKind = name.parse().map_err(bad_request)?;
    if !privileged(kernel, peer) {
        return Err(Failure::new(
            FailureKind::PermissionDenied,
            "only root or the kernel's user may switch the scheduling policy",
        ));
    }
    kernel.update(|s| s.set_policy(make_policy(kind, &s.config)));
    Ok(())
}
