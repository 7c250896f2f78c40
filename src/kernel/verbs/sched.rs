//! `Sched`: show the scheduling policy, or switch it.

use super::{Conn, Kernel, Peer, bad_request, reply};
use crate::kernel::POLICIES;
use crate::proto::{CodecError, Response, SchedRequest, SchedStatus};
use std::sync::Arc;

pub async fn handle(
    kernel: &Arc<Kernel>,
    _peer: Peer,
    req: SchedRequest,
    conn: &mut Conn,
) -> Result<(), CodecError> {
    if let Some(name) = &req.policy
        && !POLICIES.contains(&name.as_str())
    {
        let message = format!("unknown policy `{name}` (known: {})", POLICIES.join(", "));
        return reply(conn, Err(bad_request(message))).await;
    }
    let status = kernel.read(|s| SchedStatus {
        policy: s.scheduler().policy_name().to_string(),
        available: POLICIES.iter().map(|p| p.to_string()).collect(),
        quantum_tokens: s.config.quantum_tokens,
        cpus: s.config.cpus,
        context_switches: s.context_switches,
    });
    reply(conn, Ok(Response::Sched(status))).await
}
