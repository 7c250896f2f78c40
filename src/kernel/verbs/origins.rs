//! `Origins`: where processes came from (`ps -l`): `llmsh`, or `http` and the client's user agent.
//! Like a prompt, an origin is shown only to the process's owner and root.

use super::{Kernel, Peer, bad_request};
use crate::proto::{MAX_ORIGIN_PIDS, OriginList, OriginsRequest, ProcessOrigin, Reply, Response};
use std::sync::Arc;

pub fn handle(kernel: &Arc<Kernel>, peer: Peer, req: OriginsRequest) -> Reply {
    if req.pids.len() > MAX_ORIGIN_PIDS {
        return Err(bad_request(format!(
            "at most {MAX_ORIGIN_PIDS} pids at a time, not {}",
            req.pids.len()
        )));
    }
    let origins = kernel.read(|s| {
        req.pids
            .iter()
            .filter_map(|pid| {
                let origin = s.origin_for(*pid, peer.uid)?;
                Some(ProcessOrigin { pid: *pid, origin })
            })
            .collect()
    });
    Ok(Response::Origins(OriginList { origins }))
}
