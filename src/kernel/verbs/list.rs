//! `List`: the process table as `ps` shows it. Other users' prompts are hidden.

use super::{Conn, Kernel, Peer, reply};
use crate::proto::{CodecError, ListRequest, ProcessList, Response};
use std::sync::Arc;

pub async fn handle(
    kernel: &Arc<Kernel>,
    peer: Peer,
    req: ListRequest,
    conn: &mut Conn,
) -> Result<(), CodecError> {
    let list = kernel.read(|s| ProcessList {
        processes: s.list(peer.uid, req.all_users),
        cpus: s.config.cpus,
        policy: s.scheduler().policy_name().to_string(),
    });
    reply(conn, Ok(Response::Processes(list))).await
}
