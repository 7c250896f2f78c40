//! `List`: the process table as `ps` shows it. Other users' prompts are hidden, and every prompt is a
//! preview. A table too large for one frame goes in pages: `ProcessesPart` frames, the last page as
//! `Processes`.

use super::{Conn, Kernel, Peer, reply};
use crate::proto::{
    CodecError, ListRequest, MAX_FRAME_BYTES, ProcessInfo, ProcessList, Response, encode,
};
use std::sync::Arc;

/// Encoded bytes of rows in one frame: half the frame limit leaves room for the list's other fields
/// and the reply around it, and a table of thousands of rows still takes only a few frames.
pub const LIST_PAGE_BYTES: usize = MAX_FRAME_BYTES / 2;

pub async fn handle(
    kernel: &Arc<Kernel>,
    peer: Peer,
    req: ListRequest,
    conn: &mut Conn,
) -> Result<(), CodecError> {
    let (rows, cpus, policy) = kernel.read(|s| {
        (
            s.list(peer.uid, req.all_users),
            s.config.cpus,
            s.scheduler().policy_name().to_string(),
        )
    });
    let mut pages = pages(rows, LIST_PAGE_BYTES);
    let last = pages.pop().unwrap_or_default();
    for processes in pages {
        let list = ProcessList {
            processes,
            cpus,
            policy: policy.clone(),
        };
        reply(conn, Ok(Response::ProcessesPart(list))).await?;
    }
    let list = ProcessList {
        processes: last,
        cpus,
        policy,
    };
    reply(conn, Ok(Response::Processes(list))).await
}

/// `rows` in pages of at most `max_bytes` encoded each (a row alone over it is a page of its own);
/// always at least one page, maybe empty.
pub fn pages(rows: Vec<ProcessInfo>, max_bytes: usize) -> Vec<Vec<ProcessInfo>> {
    let mut pages = vec![Vec::new()];
    let mut bytes = 0;
    for row in rows {
        // A row that cannot be encoded could not be sent either way; its size is then unknown.
        let size = encode(&row).map_or(max_bytes, |b| b.len());
        let page_full = bytes + size > max_bytes;
        if page_full && pages.last().is_some_and(|p| !p.is_empty()) {
            pages.push(Vec::new());
            bytes = 0;
        }
        bytes += size;
        if let Some(page) = pages.last_mut() {
            page.push(row);
        }
    }
    pages
}

#[cfg(test)]
mod tests {
    use super::pages;
    use crate::proto::{Pid, ProcessInfo, ProcessState, ProcessType, encode};

    fn row(pid: u64, prompt_bytes: usize) -> ProcessInfo {
        ProcessInfo {
            pid: Pid(pid),
            uid: 1,
            process_type: ProcessType::User,
            priority: 80,
            nice: 0,
            state: ProcessState::Waiting,
            tokens_used: 0,
            allowance: 10,
            prompt_tokens: 0,
            cpu_ms: 0,
            age_ms: 0,
            prompt: Some("p".repeat(prompt_bytes)),
            context_switches: 0,
            slot: None,
            queue_position: Some(1),
            exit: None,
            note: None,
            eta_ms: None,
            context: None,
        }
    }

    #[test]
    fn rows_are_paged_under_the_budget_in_order_losing_none() {
        let rows: Vec<_> = (1..=100).map(|pid| row(pid, 90)).collect();
        let one = encode(&rows[0]).unwrap().len();
        let paged = pages(rows.clone(), one * 7 + 3);
        assert!(paged.iter().all(|p| p.len() == 7 || p.len() == 100 % 7));
        assert_eq!(paged.concat(), rows);
    }

    #[test]
    fn a_small_table_is_one_page_and_an_empty_one_an_empty_page() {
        assert_eq!(pages(vec![row(1, 5)], 1 << 20).len(), 1);
        assert_eq!(pages(Vec::new(), 1 << 20), vec![Vec::<ProcessInfo>::new()]);
    }

    #[test]
    fn a_row_over_the_budget_is_a_page_of_its_own() {
        let paged = pages(vec![row(1, 10), row(2, 500), row(3, 10)], 100);
        let sizes: Vec<usize> = paged.iter().map(Vec::len).collect();
        assert_eq!(sizes, [1, 1, 1]);
    }
}
