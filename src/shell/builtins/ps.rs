//! `ps [-a] [-l]`: the process table. URG is the effective priority as the policy weighs it: higher
//! runs first (the other way round from Unix's PRI, hence its own name). A waiting process shows
//! its place in the run queue (QPOS, 1 runs next) and an estimate of when it gets a slot (ETA, from
//! recent token rates; `?` before any run has been timed). `-a` includes other users' processes
//! (their prompts hidden), `-l` adds prompt tokens, context switches, the slot, tokens per second,
//! notes and where each process came from (`llmsh`, or `http` and the client's user agent).
//! Prompts are previews (the kernel sends their first 256 characters), cut to the terminal's
//! width; `cat` shows a process's output whole. `-l` also shows each process's parent and group
//! (PPID, PGID), and `f` (`ps f`, `ps -lf`) lists each process under the one that feeds it, as
//! procps draws a forest (see [`render::tree`]).

use super::{Help, usage_error};
use crate::proto::{
    LinksRequest, ListRequest, MAX_ORIGIN_PIDS, OriginsRequest, Pid, ProcessLink, ProcessList,
    Request, Response,
};
use crate::shell::client::ClientError;
use crate::shell::render;
use crate::shell::session::Shell;
use std::collections::HashMap;

pub const HELP: Help = Help {
    name: "ps",
    usage: "ps [-a] [-l] [f]",
    summary: "list processes (-a all users, -l long format with PPID and PGID, f as a forest)",
};

pub async fn run(sh: &mut Shell, args: &[String]) -> i32 {
    let (mut all, mut long, mut tree) = (false, false, false);
    for arg in args {
        if arg == "--forest" {
            tree = true;
            continue;
        }
        // BSD style without a dash too, as `ps f` is typed.
        let flags = arg.strip_prefix('-').unwrap_or(arg);
        if flags.is_empty() {
            return usage_error(sh, &HELP, format!("{arg}: unexpected argument"));
        }
        for f in flags.chars() {
            match f {
                'a' | 'e' | 'A' => all = true,
                'l' => long = true,
                'f' => tree = true,
                _ => return usage_error(sh, &HELP, format!("-{f}: invalid option")),
            }
        }
    }
    let fetched = match fetch(sh, all).await {
        Ok(list) if long => origins(sh, &list).await.map(|o| (list, o)),
        other => other.map(|list| (list, Default::default())),
    };
    let fetched = match fetched {
        Ok((list, origins)) if long || tree => links(sh, &list).await.map(|l| (list, origins, l)),
        other => other.map(|(list, origins)| (list, origins, HashMap::new())),
    };
    match fetched {
        Ok((mut list, origins, links)) => {
            let mut width = render::terminal_width();
            if long {
                width = width.saturating_sub(render::tree::LINK_COLUMNS_WIDTH);
            }
            let backends = if long { backends(sh).await } else { Vec::new() };
            let mut depths = Vec::new();
            if tree {
                let order = render::tree::forest(&list.processes, &links);
                let rows = std::mem::take(&mut list.processes);
                list.processes = order.iter().map(|(i, _)| rows[*i].clone()).collect();
                depths = order.into_iter().map(|(_, depth)| depth).collect();
            }
            let mut table = render::ps_table_on(&list, &origins, &backends, long, width);
            if tree {
                table = render::tree::indent_prompts(&table, &depths);
            }
            if long {
                table = render::tree::with_link_columns(&table, &links);
            }
            print!("{table}");
            0
        }
        Err(e) => {
            sh.complain("ps", e);
            1
        }
    }
}

/// The backends, when there are several (`ps -l` then names each slot `BACKEND:SLOT`); none from
/// a kernel without the `Backends` verb.
async fn backends(sh: &Shell) -> Vec<crate::proto::BackendRow> {
    match sh
        .call(Request::Backends(crate::proto::BackendsRequest {}))
        .await
    {
        Ok(Response::Backends(t)) if t.backends.len() > 1 => t.backends,
        _ => Vec::new(),
    }
}

/// Where each listed process came from. A kernel that does not know the `Origins` verb answers
/// with an error: the table is then shown without them.
async fn origins(sh: &Shell, list: &ProcessList) -> Result<HashMap<Pid, String>, ClientError> {
    let mut client = sh.client().await?;
    let pids: Vec<_> = list.processes.iter().map(|p| p.pid).collect();
    let mut origins = HashMap::new();
    for batch in pids.chunks(MAX_ORIGIN_PIDS) {
        let request = Request::Origins(OriginsRequest {
            pids: batch.to_vec(),
        });
        match client.call(request).await {
            Ok(Response::Origins(found)) => {
                origins.extend(found.origins.into_iter().map(|o| (o.pid, o.origin)));
            }
            _ => return Ok(HashMap::new()),
        }
    }
    Ok(origins)
}

/// Each listed process's parent and group. A kernel that does not know the `Links` verb answers
/// with an error: the table is then shown without them.
async fn links(sh: &Shell, list: &ProcessList) -> Result<HashMap<Pid, ProcessLink>, ClientError> {
    let mut client = sh.client().await?;
    let pids: Vec<_> = list.processes.iter().map(|p| p.pid).collect();
    let mut links = HashMap::new();
    for batch in pids.chunks(MAX_ORIGIN_PIDS) {
        let request = Request::Links(LinksRequest {
            pids: batch.to_vec(),
        });
        match client.call(request).await {
            Ok(Response::Links(found)) => {
                links.extend(found.links.into_iter().map(|l| (l.pid, l)));
            }
            _ => return Ok(HashMap::new()),
        }
    }
    Ok(links)
}

/// The process table: one `Processes` frame, or `ProcessesPart` pages and the last as `Processes`
/// when it is larger than a frame.
async fn fetch(sh: &Shell, all_users: bool) -> Result<ProcessList, ClientError> {
    let mut client = sh.client().await?;
    client
        .send(Request::List(ListRequest { all_users }))
        .await?;
    let mut rows = Vec::new();
    loop {
        match client.recv().await? {
            Response::ProcessesPart(page) => rows.extend(page.processes),
            Response::Processes(mut list) => {
                rows.append(&mut list.processes);
                list.processes = rows;
                return Ok(list);
            }
            other => return Err(ClientError::unexpected(&other)),
        }
    }
}
