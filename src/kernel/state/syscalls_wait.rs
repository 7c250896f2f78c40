//! The other half of system calls: a caller blocked in `wait` is woken when its child ends
//! ([`KernelState::syscall_ended`]), and resumes once every call of its answer has a result
//! ([`KernelState::complete_turn`]): its answer and the calls go into its conversation as an
//! assistant message with `tool_calls`, each result as a `tool` message naming its call, and the
//! results are written into its output (`[tool result ID] RESULT`) for `cat`. A process that ends
//! takes its children with it (SIGKILL), so nothing it spawned outlives it; a child's tokens are
//! charged to its parent when it ends. After a crash, [`KernelState::restore_syscalls`] blocks the
//! callers again and settles the waits whose children ended meanwhile.

use super::KernelState;
use crate::kernel::journal::record::Record;
use crate::kernel::syscalls::{self, calls::SyscallError};
use crate::proto::{
    ChatMessage, ExitStatus, OutputChunk, Pid, ProcessState, Response, Role, Signal,
};
use serde_json::json;

impl KernelState {
    /// `pid` has ended: its children are killed, its parent charged its tokens and, if blocked in
    /// `wait` on it, given its result. Called by every ending.
    pub(super) fn syscall_ended(&mut self, pid: Pid) {
        let Some(p) = self.table.get(&pid) else {
            return;
        };
        let Some(state) = syscalls::state_of(&p.ask) else {
            return;
        };
        let tokens = p.tokens_used;
        for child in self.spawned_children(pid) {
            let live = self.table.get(&child).is_some_and(|c| c.exit.is_none());
            if live {
                let note = format!("its parent, process {pid}, ended");
                let status = ExitStatus::Killed {
                    signal: Signal::Kill,
                };
                self.finish(child, status, Some(note));
            }
        }
        let Some(parent) = state.parent.map(Pid) else {
            return;
        };
        let (ppid, uid) = self
            .table
            .get(&pid)
            .map_or((None, 0), |p| (p.link.ppid, p.spec.uid));
        if ppid != Some(parent) {
            return;
        }
        let parent_live =
            |p: &&mut crate::kernel::process::Process| p.exit.is_none() && p.spec.uid == uid;
        if let Some(p) = self.table.get_mut(&parent).filter(parent_live) {
            p.tokens_used = p.tokens_used.saturating_add(tokens);
        }
        self.settle_waits(parent);
    }

    /// Gives the `wait` calls of `pid`'s turn whose children have ended their results, and
    /// resumes `pid` once none is left waiting.
    fn settle_waits(&mut self, pid: Pid) {
        let Some(p) = self.table.get(&pid).filter(|p| p.exit.is_none()) else {
            return;
        };
        let Some(mut state) = syscalls::state_of(&p.ask) else {
            return;
        };
        let Some(turn) = state.turn.as_mut() else {
            return;
        };
        let mut settled = false;
        for call in turn.calls.iter_mut().filter(|c| c.result.is_none()) {
            let child = Pid(call.waits_on.unwrap_or(0));
            let result = match self.table.get(&child) {
                Some(c) if c.exit.is_none() => continue,
                Some(_) => self.wait_result(child),
                None => SyscallError::new("ESRCH", format!("process {child} is gone")).result(),
            };
            call.result = Some(result);
            settled = true;
        }
        let pending = turn.pending();
        if !settled {
            return;
        }
        let Some(p) = self.table.get_mut(&pid) else {
            return;
        };
        syscalls::store(&mut p.ask, &state);
        if pending || p.state != ProcessState::Blocked {
            let ask = p.ask.clone();
            self.record(Record::Asked { pid, ask });
            return;
        }
        self.complete_turn(pid);
    }

    /// Folds `pid`'s carried-out turn into its conversation and queues it to continue.
    pub(super) fn complete_turn(&mut self, pid: Pid) {
        let Some(p) = self.table.get_mut(&pid) else {
            return;
        };
        let Some(mut state) = syscalls::state_of(&p.ask) else {
            return;
        };
        let Some(turn) = state.turn.take() else {
            return;
        };
        let mut messages = p.asked_messages();
        let mut parts = Vec::with_capacity(turn.calls.len() + 1);
        let tool_calls: Vec<_> = turn
            .calls
            .iter()
            .map(|c| {
                json!({ "id": c.id, "type": "function",
                "function": { "name": c.name, "arguments": c.arguments } })
            })
            .collect();
        parts.push(json!({ "at": messages.len(), "tool_calls": tool_calls }));
        messages.push(ChatMessage {
            role: Role::Assistant,
            content: turn.text.clone(),
        });
        let mut shown = String::new();
        if !p.output.is_empty() && !p.output.ends_with('\n') {
            shown.push('\n');
        }
        for call in &turn.calls {
            let result = call.result.clone().unwrap_or_default();
            shown.push_str(&format!("[tool result {}] {result}\n", call.id));
            parts.push(json!({ "at": messages.len(), "tool_call_id": call.id }));
            messages.push(ChatMessage {
                role: Role::Tool,
                content: result,
            });
        }
        p.output.push_str(&shown);
        p.broadcast(Ok(Response::Output(OutputChunk { pid, text: shown })));
        state.answered = p.output.len();
        p.ask.messages = messages;
        syscalls::add_message_parts(&mut p.ask, parts);
        syscalls::store(&mut p.ask, &state);
        syscalls::release_call(&mut p.ask);
        let ask = p.ask.clone();
        self.checkpoint(pid);
        self.record(Record::Asked { pid, ask });
        if self
            .table
            .get(&pid)
            .is_some_and(|p| p.remaining_tokens() == 0)
        {
            let note = self.table.get(&pid).map(|p| p.allowance_note());
            return self.finish(pid, ExitStatus::Finished, note);
        }
        self.enqueue(pid);
        let _ = self.record_state(pid);
    }

    /// CONT of a caller stopped in the middle of its calls: it goes back to waiting for its
    /// children if some call still waits, else resumes with the results. `None` when it has no
    /// calls under way.
    pub(super) fn resume_in_syscall(
        &mut self,
        pid: Pid,
    ) -> Option<crate::kernel::journal::writer::Ack> {
        let p = self.table.get_mut(&pid)?;
        let turn = syscalls::state_of(&p.ask)?.turn?;
        if p.run.is_some() {
            return None;
        }
        if turn.pending() {
            p.state = ProcessState::Blocked;
            return Some(self.record_state(pid));
        }
        p.state = ProcessState::Blocked;
        self.complete_turn(pid);
        Some(crate::kernel::journal::writer::Ack::done())
    }

    /// After a restore: callers whose turn still waits are blocked again (off the queue), and the
    /// waits whose children ended while the kernel was down are settled.
    pub(super) fn restore_syscalls(&mut self) {
        let callers: Vec<Pid> = self
            .table
            .values()
            .filter(|p| p.exit.is_none() && p.state == ProcessState::Waiting)
            .filter(|p| syscalls::state_of(&p.ask).and_then(|s| s.turn).is_some())
            .map(|p| p.pid)
            .collect();
        for pid in callers {
            self.scheduler.retire(pid);
            if let Some(p) = self.table.get_mut(&pid) {
                p.state = ProcessState::Blocked;
            }
            let all_in = self
                .table
                .get(&pid)
                .and_then(|p| syscalls::state_of(&p.ask)?.turn)
                .is_some_and(|t| !t.pending());
            if all_in {
                self.complete_turn(pid);
            } else {
                self.settle_waits(pid);
            }
        }
    }
}

impl crate::kernel::process::Process {
    /// The note `ps -l` shows of a caller blocked in `wait`: `waiting for processes 2, 3`.
    pub fn syscall_note(&self) -> Option<String> {
        if self.state != ProcessState::Blocked {
            return None;
        }
        let turn = syscalls::state_of(&self.ask)?.turn?;
        let pids: Vec<String> = turn
            .calls
            .iter()
            .filter(|c| c.result.is_none())
            .filter_map(|c| c.waits_on)
            .map(|p| p.to_string())
            .collect();
        match pids.len() {
            0 => None,
            1 => Some(format!("waiting for process {}", pids[0])),
            _ => Some(format!("waiting for processes {}", pids.join(", "))),
        }
    }
}
