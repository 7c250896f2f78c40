//! `Links`: each process's parent, group and the pipe it waits on (`ps -l`, `ps f`). Shown, like a
//! prompt, only to the process's owner and root.

use super::{Kernel, Peer, bad_request};
use crate::proto::{LinkList, LinksRequest, MAX_ORIGIN_PIDS, Reply, Response};
use std::sync::Arc;

pub fn handle(kernel: &Arc<Kernel>, peer: Peer, req: LinksRequest) -> Reply {
    if req.pids.len() > MAX_ORIGIN_PIDS {
        return Err(bad_request(format!(
            "at most {MAX_ORIGIN_PIDS} pids at a time, not {}",
            req.pids.len()
        )));
    }
    let links = kernel.read(|s| s.links(&req.pids, peer.uid));
    Ok(Response::Links(LinkList { links }))
}
