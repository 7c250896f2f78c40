//! The memory transitions of the state: a process admitted with its prompt counted, the swap plan
//! when a process starts on a slot, swap files saved and restored, and the views `ps -l` (CTX) and
//! `free` take of it. The policy (what fits, what to swap) is in [`crate::kernel::memory`].

use super::KernelState;
use super::process::Process;
use crate::kernel::memory::admission::{Admitted, cut_note};
use crate::kernel::memory::swap::SwapPlan;
use crate::kernel::memory::{TokenCount, estimate_tokens};
use crate::llm::SlotFile;
use crate::proto::{
    BackendMemory, ContextUse, MemoryStatus, Pid, ProcessState, SlotMemory, SwapUse,
};

impl Process {
    /// Tokens of its conversation: the prompt as admitted (or estimated) and the answer so far.
    fn context_used(&self) -> (u32, bool) {
        let prompt = self.memory.prompt.unwrap_or_else(|| {
            let texts = self.spec.system.iter().chain([&self.spec.prompt]);
            estimate_tokens(texts.map(String::as_str))
        });
        (
            prompt.tokens.saturating_add(self.tokens_used),
            prompt.estimated,
        )
    }

    /// The note of a process that reached its token allowance (saying so when admission cut it).
    pub(super) fn allowance_note(&self) -> String {
        match self.memory.cut_from {
            Some(asked) => format!(
                "stopped at its token allowance ({}, cut from {asked} to fit the context)",
                self.spec.allowance
            ),
            None => super::allowance_note(self.spec.allowance),
        }
    }
}

impl KernelState {
    /// Records what admission found of a new process: its prompt's tokens, and the cut allowance.
    pub fn admitted(&mut self, pid: Pid, admitted: &Admitted) {
        let size = self.memory.context_tokens();
        let Some(p) = self.table.get_mut(&pid) else {
            return;
        };
        p.memory.prompt = Some(admitted.prompt);
        p.memory.cut_from = admitted.cut_from;
        p.memory.context_size = size;
    }

    /// The backend counted `pid`'s prompt after admission estimated it.
    pub fn counted(&mut self, pid: Pid, tokens: u32) {
        if let Some(p) = self.table.get_mut(&pid) {
            p.memory.prompt = Some(TokenCount {
                tokens,
                estimated: false,
            });
            self.memory.server_tokenizer = true;
        }
    }

    /// The note of a process whose allowance admission cut, while nothing else is worth saying.
    pub(super) fn admission_note(p: &Process) -> Option<String> {
        let asked = p.memory.cut_from?;
        Some(cut_note(asked, p.spec.allowance, p.memory.context_size))
    }

    /// Whether a run that the backend ended with `length` before the allowance met the end of the
    /// context; returns the note to end with.
    pub(super) fn context_full(&self, pid: Pid) -> Option<String> {
        let p = self.table.get(&pid)?;
        (p.remaining_tokens() > 0).then(|| self.memory.context_full_note())
    }

    /// The swap plan for `pid` starting on `slot`; the slot's cache holds `pid`'s conversation from
    /// now on.
    pub(super) fn plan_swap(&mut self, pid: Pid, slot: u32) -> SwapPlan {
        let Some(cached) = self.memory.cached.get_mut(slot as usize) else {
            return SwapPlan::default();
        };
        let previous = cached.replace(pid);
        for (i, other) in self.memory.cached.iter_mut().enumerate() {
            if i != slot as usize && *other == Some(pid) {
                *other = None;
            }
        }
        let holder = previous
            .and_then(|q| self.table.get(&q))
            .filter(|q| q.state != ProcessState::Zombie && q.run.is_none())
            .map(|q| (q.pid, q.context_used().0));
        self.memory.swap.plan(pid, holder)
    }

    /// `pid`'s slot cache was saved to swap. A process that meanwhile runs again, or ended, does not
    /// keep the file.
    pub fn swapped_out(&mut self, pid: Pid, file: SlotFile) {
        let swapped = self
            .table
            .get(&pid)
            .is_some_and(|p| p.state != ProcessState::Zombie && p.run.is_none());
        self.memory.swap.saved(pid, file.bytes, file.tokens);
        if !swapped {
            self.memory.swap.discard(pid);
        }
    }

    /// After the journal is read: keeps the swap files an earlier kernel left only for processes
    /// still to resume, and removes the others.
    pub fn keep_resumable_swap(&mut self) {
        let table = &self.table;
        let kept = self.memory.swap.keep_only(|pid| {
            table
                .get(&pid)
                .is_some_and(|p| p.state != ProcessState::Zombie && p.exit.is_none())
        });
        if !kept.is_empty() {
            tracing::info!(
                ?kept,
                "swap files of an earlier kernel kept for their processes"
            );
        }
    }

    /// `pid`'s swap file was restored into its slot (`None`: the restore failed; it recomputes).
    pub fn swapped_in(&mut self, pid: Pid, file: Option<SlotFile>) {
        let expected = self.memory.swap.restored(pid);
        if let (Some(_), Some(p)) = (file, self.table.get_mut(&pid)) {
            p.memory.restored = expected;
        }
    }

    /// The backend's count of cached prompt tokens for `pid`'s run: after a restore, fewer than it
    /// restored means the server lost the cache (and recomputed).
    pub fn on_cached(&mut self, pid: Pid, cached: u32) {
        let Some(expected) = self
            .table
            .get_mut(&pid)
            .and_then(|p| p.memory.restored.take())
        else {
            return;
        };
        if cached < expected / 2 {
            self.memory.swap.lost(expected, cached);
        }
    }

    /// CTX of `p` for its `ps` row.
    pub(super) fn context_use(&self, p: &Process) -> ContextUse {
        let (used, estimated) = p.context_used();
        ContextUse {
            used,
            size: self.memory.context_tokens(),
            estimated,
            swapped: p.run.is_none() && self.memory.swap.holds(p.pid),
        }
    }

    /// What `free` shows, for the backend at `url`.
    pub fn memory_status(&self, url: &str) -> MemoryStatus {
        let slots = self
            .slots
            .iter()
            .enumerate()
            .map(|(i, running)| {
                let cached = self.memory.cached.get(i).copied().flatten();
                let used = cached
                    .and_then(|q| self.table.get(&q))
                    .map(|q| q.context_used().0);
                SlotMemory {
                    slot: i as u32,
                    running: *running,
                    cached,
                    used,
                }
            })
            .collect();
        let swap = &self.memory.swap;
        let tokenizer = if self.memory.server_tokenizer {
            "server"
        } else {
            "estimate"
        };
        MemoryStatus {
            backends: vec![BackendMemory {
                url: url.to_string(),
                context_tokens: self.memory.context_tokens(),
                context_source: self
                    .memory
                    .context
                    .map_or("unknown", |(_, s)| s.name())
                    .to_string(),
                tokenizer: tokenizer.to_string(),
                slots,
            }],
            swap: SwapUse {
                enabled: swap.enabled(),
                dir: swap.dir().map(|d| d.display().to_string()),
                used_bytes: swap.used_bytes(),
                max_bytes: swap.max_bytes(),
                processes: swap.processes(),
                saves: swap.saves,
                restores: swap.restores,
                lost_restores: swap.lost_restores,
                off_reason: swap.off_reason.clone(),
            },
        }
    }
}
