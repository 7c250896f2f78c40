//! `Sched`: show the scheduling policy, or switch it at run time. Switching re-ranks the waiting
//! processes at once; running ones are weighed by the new policy at their next quantum boundary. Only
//! root or the kernel's own user may switch (it changes everyone's service).

use super::{Kernel, Peer, bad_request, privileged};
use crate::config::PolicyKind;
use crate::kernel::make_policy;
use crate::proto::{Failure, FailureKind, Reply, Response, SchedRequest, SchedStatus};
use std::sync::Arc;

pub fn handle(kernel: &Arc<Kernel>, peer: Peer, req: SchedRequest) -> Reply {
    if let Some(name) = &req.policy {
        switch(kernel, peer, name)?;
        tracing::info!(uid = peer.uid, policy = %name, "scheduling policy switched");
    }
    let status = kernel.read(|s| SchedStatus {
        policy: s.scheduler().policy_name().to_string(),
        available: PolicyKind::ALL.map(|p| p.name().to_string()).to_vec(),
        quantum_tokens: s.config.quantum_tokens,
        cpus: s.config.cpus,
        context_switches: s.context_switches,
    });
    Ok(Response::Sched(status))
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
