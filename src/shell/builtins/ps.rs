//! `ps [-a] [-l]`: the process table. URG is the effective priority as the policy weighs it: higher
//! runs first (the other way round from Unix's PRI, hence its own name). A waiting process shows
//! its place in the run queue (QPOS, 1 runs next) and an estimate of when it gets a slot (ETA, from
//! recent token rates; `?` before any run has been timed). `-a` includes other users' processes
//! (their prompts hidden), `-l` adds prompt tokens, context switches, the slot, tokens per second,
//! notes and where each process came from (`llmsh`, or `http` and the client's user agent).
//! Prompts are previews (the kernel sends their first 256 characters), cut to the terminal's
//! width; `cat` shows a process's output whole.

use super::{Help, usage_error};
use crate::proto::{
    ListRequest, MAX_ORIGIN_PIDS, OriginsRequest, Pid, ProcessList, Request, Response,
};
use crate::shell::client::ClientError;
use crate::shell::render;
use crate::shell::session::Shell;
use std::collections::HashMap;

pub const HELP: Help = Help {
    name: "ps",
    usage: "ps [-a] [-l]",
    summary: "list processes (-a all users, -l long format)",
};

pub async fn run(sh: &mut Shell, args: &[String]) -> i32 {
    let (mut all, mut long) = (false, false);
    for arg in args {
        let Some(flags) = arg.strip_prefix('-').filter(|f| !f.is_empty()) else {
            return usage_error(sh, &HELP, format!("{arg}: unexpected argument"));
        };
        for f in flags.chars() {
            match f {
                'a' | 'e' | 'A' => all = true,
                'l' => long = true,
                _ => return usage_error(sh, &HELP, format!("-{f}: invalid option")),
            }
        }
    }
    let fetched = match fetch(sh, all).await {
        Ok(list) if long => origins(sh, &list).await.map(|o| (list, o)),
        other => other.map(|list| (list, Default::default())),
    };
    match fetched {
        Ok((list, origins)) => {
            let width = render::terminal_width();
            print!("{}", render::ps_table_from(&list, &origins, long, width));
            0
        }
        Err(e) => {
            sh.complain("ps", e);
            1
        }
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
