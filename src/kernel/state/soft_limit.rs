//! The soft limit (see [`crate::config::soft_limit`]): at the first quantum boundary past its
//! threshold, a process's run ends there and its next run carries a short system note, just before
//! the answer so far, saying how many tokens are left and to conclude. The answer goes on as one
//! unbroken text — the note is part of the request, never of the output — and `ps -l` says the
//! process was told. A process a continuation could break (tools, a response format) is never cut
//! for it.

use super::KernelState;
use super::process::Process;
use crate::proto::{ChatMessage, Pid, Role};

/// When a process was told to wrap up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WrapUp {
    /// Tokens it had generated then.
    pub told_at: u32,
}

/// The system note a process told to wrap up gets with `tokens_left`.
pub fn wrap_up_note(tokens_left: u32) -> String {
    format!(
        "You have {tokens_left} tokens left for this answer. Conclude now: finish the point you \
         are making and end the answer."
    )
}

/// The messages of `p`'s next run: its conversation, with the wrap-up note just before the answer
/// so far once it has been told.
pub fn run_messages(p: &Process) -> Vec<ChatMessage> {
    let mut messages = p.conversation();
    if p.wrap_up.is_some() {
        let at = match messages.last() {
            Some(last) if last.role == Role::Assistant => messages.len() - 1,
            _ => messages.len(),
        };
        let note = ChatMessage {
            role: Role::System,
            content: wrap_up_note(p.remaining_tokens()),
        };
        messages.insert(at, note);
    }
    messages
}

impl KernelState {
    /// At a quantum boundary: whether `pid` has just passed its soft limit; if so it is marked told
    /// and its run ends here, to go on with the note.
    pub(super) fn tells_to_wrap_up(&mut self, pid: Pid) -> bool {
        let Some(p) = self.table.get(&pid) else {
            return false;
        };
        let threshold = self
            .config
            .soft_limit
            .threshold(p.spec.process_type, p.spec.allowance);
        let due = threshold.is_some_and(|t| p.tokens_used >= t)
            && p.wrap_up.is_none()
            && p.remaining_tokens() > 0
            && !p.unsliced;
        if !due {
            return false;
        }
        let Some(p) = self.table.get_mut(&pid) else {
            return false;
        };
        p.wrap_up = Some(WrapUp {
            told_at: p.tokens_used,
        });
        let Some(run) = p.run.as_mut() else {
            return false;
        };
        run.ending = true;
        run.cancel.cancel();
        true
    }
}

/// What `ps -l` says of a process told to wrap up.
pub fn wrap_up_shown(p: &Process) -> Option<String> {
    let told = p.wrap_up?;
    Some(format!(
        "told to wrap up at {} of {} tokens",
        told.told_at, p.spec.allowance
    ))
}
