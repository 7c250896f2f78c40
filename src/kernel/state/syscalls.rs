//! The trap: a process with system calls enabled whose answer ends with tool calls has them carried
//! out by the kernel ([`KernelState::trap`]). `spawn` creates a child (type USER_SUBPROCESS when
//! the caller is the user's own process, USER or SYSTEM, splitting its task, else LLM_INITIATED;
//! same owner, the caller as parent and its group as group, never a higher priority than the
//! caller's, its allowance taken from what the caller has left), `kill` ends one of the caller's children,
//! `ps` lists them, and `wait` either answers at once (the child has ended) or blocks the caller:
//! STAT `S`, no slot, no place in the queue, until the child ends ([`super::syscalls_wait`]). Once
//! every call of the answer has its result the caller resumes as a continuation, the results in its
//! conversation as `tool` messages.

use super::KernelState;
use crate::kernel::journal::record::Record;
use crate::kernel::memory::admission::{Admitted, fit};
use crate::kernel::memory::estimate_tokens;
use crate::kernel::process::{Ask, Spec};
use crate::kernel::state::pipes::NewLink;
use crate::kernel::syscalls::calls::{Syscall, SyscallError};
use crate::kernel::syscalls::{self, CallRecord, SyscallState, Turn};
use crate::llm::{ToolCall, assemble};
use crate::proto::{Pid, ProcessState, ProcessType, Signal};
use serde_json::{Value, json};

impl KernelState {
    /// `pid`'s run completed: if it has system calls and its answer ends with calls, carries them
    /// out and returns true (the process then waits or is queued again); false lets it finish.
    pub(super) fn trap(&mut self, pid: Pid) -> bool {
        let Some(p) = self.table.get_mut(&pid) else {
            return false;
        };
        let Some(mut state) = syscalls::state_of(&p.ask) else {
            return false;
        };
        let choice = assemble(p.choices.iter().filter(|d| d.index == 0))
            .into_iter()
            .next()
            .filter(|c| !c.tool_calls.is_empty());
        let Some(choice) = choice else {
            return false;
        };
        p.choices.clear();
        let mut calls = Vec::with_capacity(choice.tool_calls.len());
        for call in &choice.tool_calls {
            calls.push(self.carry_out(pid, &mut state, call));
        }
        let turn = Turn {
            text: choice.content,
            calls,
        };
        let pending = turn.pending();
        state.turn = Some(turn);
        let Some(p) = self.table.get_mut(&pid) else {
            return true;
        };
        syscalls::store(&mut p.ask, &state);
        if pending {
            p.state = ProcessState::Blocked;
            self.scheduler.retire(pid);
            let ask = p.ask.clone();
            self.record(Record::Asked { pid, ask });
            let _ = self.record_state(pid);
        } else {
            self.complete_turn(pid);
        }
        true
    }

    /// Carries out one call of `pid`'s answer: its result, or the child a `wait` blocks on.
    fn carry_out(&mut self, pid: Pid, state: &mut SyscallState, call: &ToolCall) -> CallRecord {
        let mut record = CallRecord {
            id: call.id.clone(),
            name: call.name.clone(),
            arguments: call.arguments.clone(),
            result: None,
            waits_on: None,
        };
        let outcome = Syscall::parse(call).and_then(|syscall| match syscall {
            Syscall::Spawn {
                prompt,
                system,
                max_tokens,
            } => self.sys_spawn(pid, state, prompt, system, max_tokens),
            Syscall::Wait(child) => {
                self.own_child(pid, child)?;
                match self.table.get(&child).and_then(|c| c.exit.clone()) {
                    Some(_) => Ok(self.wait_result(child)),
                    None => {
                        record.waits_on = Some(child.0);
                        Err(SyscallError::new("", ""))
                    }
                }
            }
            Syscall::Kill(child) => self.sys_kill(pid, child),
            Syscall::Ps => Ok(self.sys_ps(pid)),
        });
        match outcome {
            Ok(result) => record.result = Some(result),
            Err(_) if record.waits_on.is_some() => {}
            Err(e) => record.result = Some(e.result()),
        }
        record
    }

    /// `spawn`: a child of `pid`, within the limits.
    fn sys_spawn(
        &mut self,
        pid: Pid,
        state: &mut SyscallState,
        prompt: String,
        system: Option<String>,
        max_tokens: Option<u32>,
    ) -> Result<String, SyscallError> {
        let limits = self.config.syscalls;
        if state.depth + 1 > limits.max_depth {
            return Err(SyscallError::new(
                "EAGAIN",
                format!(
                    "a child here would be {} levels deep; the limit is {}",
                    state.depth + 1,
                    limits.max_depth
                ),
            ));
        }
        if state.spawned >= limits.max_children {
            return Err(SyscallError::new(
                "EAGAIN",
                format!(
                    "this process has spawned {} children, its limit",
                    state.spawned
                ),
            ));
        }
        let max_prompt = self.config.max_prompt_bytes;
        let bytes = prompt.len() + system.as_ref().map_or(0, String::len);
        if bytes > max_prompt {
            return Err(SyscallError::new(
                "EINVAL",
                format!("the prompt is {bytes} bytes, over the kernel's limit of {max_prompt}"),
            ));
        }
        let Some(parent) = self.table.get(&pid) else {
            return Err(SyscallError::new("ESRCH", "the caller is gone"));
        };
        // Children's tokens are the parent's: a child may use at most what the parent has left.
        let left = parent.remaining_tokens();
        let child_type = self.child_type(parent.spec.process_type);
        let default = self.config.type_settings(child_type).allowance_tokens;
        let allowance = max_tokens.unwrap_or(default).min(left);
        if allowance == 0 {
            return Err(SyscallError::new(
                "EAGAIN",
                "no tokens are left in this process's allowance for a child",
            ));
        }
        let (nice, pgid) = (parent.nice, parent.pgid());
        let mut spec = Spec {
            uid: parent.spec.uid,
            process_type: child_type,
            system,
            prompt,
            allowance,
        };
        let admitted = self.admit_child(&mut spec)?;
        let mut ask = Ask {
            origin: Some(format!("spawn by {pid}")),
            ..Ask::default()
        };
        let child_state = SyscallState {
            depth: state.depth + 1,
            parent: Some(pid.0),
            ..SyscallState::default()
        };
        syscalls::enable(&mut ask, &child_state);
        let link = NewLink {
            input_from: None,
            continued_from: Some(pid),
            pgid: Some(pgid),
        };
        let (child, _ack) = self.create_linked(spec, ask, nice, link);
        self.admitted(child, &admitted);
        state.spawned += 1;
        Ok(json!({ "pid": child.0 }).to_string())
    }

    /// Admission by memory of a child, here and now (a spawn happens inside the state, where the
    /// backend cannot be asked): its prompt, with the tools it is offered, is estimated, and fitted
    /// to the context size learned at earlier admissions, if any. A prompt that fills a slot is
    /// `ENOMEM`; an allowance past the context is cut to the room left, as at a submit.
    fn admit_child(&self, spec: &mut Spec) -> Result<Admitted, SyscallError> {
        let tools = syscalls::tools().to_string();
        let texts = spec.system.iter().map(String::as_str);
        let prompt = estimate_tokens(texts.chain([spec.prompt.as_str(), tools.as_str()]));
        let cut_from = match self.memory.context_tokens() {
            Some(size) => {
                fit(spec, prompt, size).map_err(|f| SyscallError::new("ENOMEM", f.message))?
            }
            None => None,
        };
        Ok(Admitted {
            prompt,
            cut_from,
            count_later: None,
        })
    }

    /// The type of a child of a process of type `parent`: USER_SUBPROCESS when the parent is the
    /// user's own process (USER, or SYSTEM) splitting its task, LLM_INITIATED when a model's own
    /// process spawns; either way never ranking above the parent (a housekeeping parent's
    /// children stay housekeeping).
    fn child_type(&self, parent: ProcessType) -> ProcessType {
        let rank = |t| self.config.type_settings(t).base_priority;
        let wanted = match parent {
            ProcessType::User | ProcessType::System => ProcessType::UserSubprocess,
            _ => ProcessType::LlmInitiated,
        };
        if rank(wanted) > rank(parent) {
            parent
        } else {
            wanted
        }
    }

    /// Checks that `child` is a child `pid` spawned: `ESRCH` if there is no such process, `EPERM`
    /// if it is not one of `pid`'s.
    fn own_child(&self, pid: Pid, child: Pid) -> Result<(), SyscallError> {
        let Some(c) = self.table.get(&child) else {
            return Err(SyscallError::new(
                "ESRCH",
                format!("no such process {child}"),
            ));
        };
        let spawned_by = syscalls::state_of(&c.ask).and_then(|s| s.parent);
        if c.link.ppid != Some(pid) || spawned_by != Some(pid.0) {
            return Err(SyscallError::new(
                "EPERM",
                format!("process {child} is not a child of this process"),
            ));
        }
        Ok(())
    }

    /// `kill`: ends one of `pid`'s children (and so its own children).
    fn sys_kill(&mut self, pid: Pid, child: Pid) -> Result<String, SyscallError> {
        self.own_child(pid, child)?;
        let ended = self.table.get(&child).is_some_and(|c| c.exit.is_some());
        if !ended {
            let note = format!("killed by its parent, process {pid}");
            self.finish(
                child,
                crate::proto::ExitStatus::Killed {
                    signal: Signal::Kill,
                },
                Some(note),
            );
        }
        Ok(json!({ "pid": child.0, "killed": !ended }).to_string())
    }

    /// `ps`: the children of `pid`.
    fn sys_ps(&self, pid: Pid) -> String {
        let children: Vec<Value> = self
            .spawned_children(pid)
            .into_iter()
            .filter_map(|child| self.table.get(&child))
            .map(|c| {
                json!({
                    "pid": c.pid.0,
                    "state": format!("{:?}", c.state),
                    "tokens": c.tokens_used,
                    "prompt": c.spec.prompt,
                    "exit": c.exit.as_ref().map(ToString::to_string),
                })
            })
            .collect();
        json!({ "children": children }).to_string()
    }

    /// The processes `pid` spawned that are still in the table.
    pub(super) fn spawned_children(&self, pid: Pid) -> Vec<Pid> {
        self.table
            .values()
            .filter(|c| c.link.ppid == Some(pid) && !c.link.piped)
            .filter(|c| syscalls::state_of(&c.ask).and_then(|s| s.parent) == Some(pid.0))
            .map(|c| c.pid)
            .collect()
    }

    /// What `wait` returns for an ended `child`: its exit status and output (cut to the limit).
    pub(super) fn wait_result(&self, child: Pid) -> String {
        let Some(c) = self.table.get(&child) else {
            return SyscallError::new("ESRCH", format!("no such process {child}")).result();
        };
        let limit = self.config.syscalls.max_result_bytes;
        let mut output = c.output.as_str();
        let mut cut = false;
        if output.len() > limit {
            let mut end = limit;
            while !output.is_char_boundary(end) {
                end -= 1;
            }
            output = &output[..end];
            cut = true;
        }
        let mut result = json!({
            "pid": child.0,
            "status": c.exit.as_ref().map_or_else(|| "running".into(), ToString::to_string),
            "output": output,
        });
        if cut {
            result["truncated_at_bytes"] = limit.into();
        }
        result.to_string()
    }
}
