//! The structured parts of an answer (tool calls, several choices, log-probabilities) as the
//! process receives them: each [`ChoiceDelta`] is kept, in order, for the HTTP client that follows
//! the answer ([`crate::http`] sends them in OpenAI's shape); choice 0's text and tool-call parts
//! count as its tokens like a plain answer's, so the allowance, quanta and `ps` see them; and once
//! choice 0 has finished with tool calls, they are written into the output as lines `cat` shows
//! (`[tool call ID] NAME(ARGUMENTS)`).

use super::KernelState;
use crate::llm::{ChoiceDelta, assemble, render_call};
use crate::proto::{OutputChunk, Pid, Response};

impl KernelState {
    /// A run produced a structured delta. Returns whether the run should go on.
    pub fn on_choice(&mut self, pid: Pid, run_id: u64, mut delta: ChoiceDelta) -> bool {
        let Some(p) = self.table.get_mut(&pid) else {
            return false;
        };
        if !p.run.as_ref().is_some_and(|r| r.id == run_id && !r.ending) {
            return false;
        }
        let counted = delta.index == 0 && delta.is_progress();
        if counted && p.remaining_tokens() == 0 {
            // The allowance is spent: `on_text` ends the process, without this delta.
            return self.on_text(pid, run_id, String::new());
        }
        let text = if counted {
            delta.content.clone().unwrap_or_default()
        } else {
            String::new()
        };
        let finished_calls = delta.index == 0 && delta.finish_reason.is_some();
        delta.content = delta.content.filter(|c| !c.is_empty());
        p.choices.push(delta);
        if finished_calls {
            write_calls(p);
        }
        if counted {
            return self.on_text(pid, run_id, text);
        }
        true
    }
}

impl super::process::Process {
    /// The structured deltas of its answer from the `from`th on (see [`KernelState::on_choice`]).
    pub fn choices_from(&self, from: usize) -> &[ChoiceDelta] {
        self.choices.get(from..).unwrap_or_default()
    }
}

/// Writes choice 0's tool calls into the output, one line each, for `cat` and followers.
fn write_calls(p: &mut super::process::Process) {
    let choice0 = p.choices.iter().filter(|d| d.index == 0);
    let Some(choice) = assemble(choice0).into_iter().next() else {
        return;
    };
    if choice.tool_calls.is_empty() {
        return;
    }
    let mut text = String::new();
    if !p.output.is_empty() && !p.output.ends_with('\n') {
        text.push('\n');
    }
    for call in &choice.tool_calls {
        text.push_str(&render_call(call));
        text.push('\n');
    }
    p.output.push_str(&text);
    let pid = p.pid;
    p.broadcast(Ok(Response::Output(OutputChunk { pid, text })));
}
