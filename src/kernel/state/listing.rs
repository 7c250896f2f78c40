//! The `ps` view of the process table: each row with its effective priority, and for a waiting process
//! its place in the run queue and an estimate of when it gets a slot. Rows carry a preview of the
//! prompt and bounded notes, so thousands of them fit in a frame however long the prompts are.

use super::KernelState;
use crate::kernel::process::Process;
use crate::proto::{
    ExitStatus, Failure, FailureKind, PROMPT_PREVIEW_CHARS, Pid, ProcessInfo, ProcessState,
};
use std::collections::HashMap;

/// Characters of a note or failure reason a row carries: a whole backend error message, never a
/// whole error page.
pub const NOTE_PREVIEW_CHARS: usize = 4096;

/// `text` cut to its first `max_chars` characters, with `…` when something was cut.
pub fn preview(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        None => text.to_string(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

impl KernelState {
    /// Where `pid` came from (`llmsh`, or `http` and the client's user agent), if `uid` may see it:
    /// like a prompt, an origin is shown only to the process's owner and root.
    pub fn origin_for(&self, pid: Pid, uid: u32) -> Option<String> {
        self.owned(pid, uid).ok()?.ask().origin.clone()
    }

    /// The process, if `uid` may read it (its owner, or root).
    pub fn owned(&self, pid: Pid, uid: u32) -> Result<&Process, Failure> {
        let p = self.table.get(&pid).ok_or_else(|| no_such_process(pid))?;
        if uid != 0 && p.spec.uid != uid {
            return Err(Failure::new(
                FailureKind::PermissionDenied,
                format!("({pid}) - Operation not permitted"),
            ));
        }
        Ok(p)
    }

    /// The `ps` row of `pid` as `uid` sees it. O(queue) for its queue position.
    pub fn stat(&self, pid: Pid, uid: u32) -> Option<ProcessInfo> {
        let p = self.table.get(&pid)?;
        let now = self.now_ms();
        let position = (p.state == ProcessState::Waiting)
            .then(|| self.scheduler.queue_order().position(|q| q == pid))
            .flatten()
            .map(|i| i as u32 + 1);
        Some(self.row(p, uid, position, now))
    }

    /// The `ps` rows visible to `uid`. O(n) in the table (it lists it), plus one pass over the queue.
    pub fn list(&self, uid: u32, all_users: bool) -> Vec<ProcessInfo> {
        let now = self.now_ms();
        let positions: HashMap<Pid, u32> = self
            .scheduler
            .queue_order()
            .enumerate()
            .map(|(i, pid)| (pid, i as u32 + 1))
            .collect();
        self.table
            .values()
            .filter(|p| all_users || uid == 0 || p.spec.uid == uid)
            .map(|p| self.row(p, uid, positions.get(&p.pid).copied(), now))
            .collect()
    }

    /// One `ps` row: `position` is its place in the run queue, if it waits there.
    fn row(&self, p: &Process, uid: u32, position: Option<u32>, now: u64) -> ProcessInfo {
        let c = if p.state == ProcessState::Waiting {
            self.candidate(p)
        } else {
            self.candidate_at(p, now)
        };
        let priority = self.scheduler.display_priority(&c, now);
        let readable = uid == 0 || p.spec.uid == uid;
        let mut info = p.info(priority, position, readable);
        info.eta_ms = position.and_then(|q| self.rates.eta_ms(q, self.config.cpus));
        info.context = Some(self.context_use(p));
        let live = p.state() != ProcessState::Zombie;
        let deadline = [
            p.deadline().filter(|_| live).map(|d| d.note(now)),
            super::soft_limit::wrap_up_shown(p),
        ]
        .into_iter()
        .flatten()
        .reduce(|a, b| format!("{a}; {b}"));
        let note = self
            .quota_note(p.pid, now)
            .or_else(|| p.note_at(now))
            .or_else(|| Self::admission_note(p));
        info.note = match (note, deadline) {
            (Some(note), Some(deadline)) => Some(format!("{deadline}; {note}")),
            (note, deadline) => note.or(deadline),
        }
        .map(|n| preview(&n, NOTE_PREVIEW_CHARS));
        info.prompt = info.prompt.map(|t| preview(&t, PROMPT_PREVIEW_CHARS));
        // Servers count the prompt only at the end of a stream: until then, PTOK is the count
        // admission made (the server's tokenizer, else an estimate), so it means something while
        // the process waits and runs.
        if info.prompt_tokens == 0
            && p.exit.is_none()
            && let Some(c) = &info.context
        {
            info.prompt_tokens = c.used.saturating_sub(info.tokens_used);
        }
        if let Some(ExitStatus::Failed { reason }) = &mut info.exit {
            *reason = preview(reason, NOTE_PREVIEW_CHARS);
        }
        info
    }
}

/// The failure for a pid that is not in the table, in kill(1)'s words.
pub fn no_such_process(pid: Pid) -> Failure {
    Failure::new(
        FailureKind::NoSuchProcess,
        format!("({pid}) - No such process"),
    )
}

#[cfg(test)]
mod tests {
    use super::preview;
    use crate::config::{KernelConfig, PolicyKind};
    use crate::kernel::process::{Ask, Spec};
    use crate::kernel::scheduler::{Scheduler, make_policy};
    use crate::kernel::state::KernelState;
    use crate::proto::ProcessType;

    /// A kernel state with the default configuration and the `priority` policy.
    fn state() -> KernelState {
        let config = KernelConfig::default();
        let policy = make_policy(PolicyKind::Priority, &config);
        KernelState::new(config, Scheduler::new(policy))
    }

    #[test]
    fn an_origin_is_shown_to_the_owner_and_root_only() {
        let mut s = state();
        let spec = Spec {
            uid: 1000,
            process_type: ProcessType::User,
            system: None,
            prompt: "hi".into(),
            allowance: 10,
        };
        let ask = Ask {
            origin: Some("http curl/8".into()),
            ..Ask::default()
        };
        let (pid, _) = s.create_asked(spec, ask, 0);
        assert_eq!(s.origin_for(pid, 1000).as_deref(), Some("http curl/8"));
        assert_eq!(s.origin_for(pid, 0).as_deref(), Some("http curl/8"));
        assert_eq!(
            s.origin_for(pid, 1001),
            None,
            "another user's origin is hidden"
        );
    }

    #[test]
    fn a_preview_keeps_short_text_and_cuts_long_text_at_a_character() {
        assert_eq!(preview("short", 10), "short");
        assert_eq!(preview("exactly", 7), "exactly");
        assert_eq!(preview("ééééé", 3), "ééé…");
        assert_eq!(preview("", 0), "");
    }

    #[test]
    fn a_prompt_not_yet_counted_by_the_server_shows_admissions_count() {
        let mut s = state();
        let spec = Spec {
            uid: 1000,
            process_type: ProcessType::User,
            system: None,
            prompt: "What is the capital of France? Answer in one word.".into(),
            allowance: 10,
        };
        let (pid, _) = s.create_asked(spec, Ask::default(), 0);
        let rows = s.list(1000, false);
        let row = rows.iter().find(|r| r.pid == pid).expect("its row");
        let used = row.context.as_ref().expect("its context").used;
        assert!(row.prompt_tokens > 0, "{row:?}");
        assert_eq!(
            row.prompt_tokens, used,
            "the prompt is all of its context yet"
        );
    }
}
