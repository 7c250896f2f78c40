//! Several backends as one machine: where a process may run, and what a backend that fails, comes,
//! or goes means for the processes. The run queue stays one queue ordered by the policy; a free slot
//! goes to the best waiting process that can run on it (one whose model the slot's backend serves),
//! so each model's pool is served in the policy's order.
//!
//! Affinity and migration: a process goes back to the slot it last ran on when that slot is free
//! (its server may still hold its cache); when it is not, the process takes any free slot that
//! serves its model, on its old backend first, else on another (it **migrates**: the continuation
//! carries its whole conversation and partial answer, so the move does not show in its output).
//! Among several free slots, one whose cache no process still needs and that begins most like the
//! process's conversation is taken ([`crate::kernel::memory::affinity`]).
//! A process only ever waits for its old slot when no other slot of its model is free.
//!
//! A backend that holds one model at a time (`swap = true`) runs one model's work until none of it
//! waits: a free slot there goes first to work for the loaded model, and only an idle server switches
//! model (counted and charged like a context switch).

use super::KernelState;
use crate::config::backends::BackendSpec;
use crate::kernel::backends::{Discovered, Pool};
use crate::kernel::memory::affinity;
use crate::proto::{BackendRow, BackendTable, Failure, FailureKind, Pid, ProcessState};

impl KernelState {
    /// The model `pid` asks for: its own, else the configured default (`None`: any).
    pub(super) fn model_of(&self, pid: Pid) -> Option<&str> {
        let p = self.table.get(&pid)?;
        p.ask.model.as_deref().or(self.config.model.as_deref())
    }

    /// Refuses a model no backend serves, naming the models there are.
    pub fn check_model(&self, asked: Option<&str>) -> Result<(), Failure> {
        let model = asked.or(self.config.model.as_deref());
        self.pool.check_model(model).map_err(|models| {
            let there = if models.is_empty() {
                "none is listed".to_string()
            } else {
                models.join(", ")
            };
            let m = model.unwrap_or_default();
            Failure::new(
                FailureKind::BadRequest,
                format!("no backend serves the model `{m}`; the models there are: {there}"),
            )
        })
    }

    /// The best waiting process that can run on a free slot now, and that slot (taken off the
    /// queue). With one backend serving every model this is the head of the queue.
    pub(super) fn pick_placed(&mut self, interactive_only: bool) -> Option<(Pid, u32)> {
        if !self.any_free_slot() {
            return None;
        }
        // First without switching any `swap` server's model, then allowing it. A model found with
        // no free slot is not tried again in the same pass: the walk costs a hash per process
        // waiting ahead of the first that fits.
        let picked = [false, true].into_iter().find_map(|switch| {
            let mut stuck: std::collections::HashSet<Option<&str>> = Default::default();
            self.scheduler.in_order(interactive_only).find_map(|pid| {
                let model = self.model_of(pid);
                if stuck.contains(&model) {
                    return None;
                }
                let slot = self.place(pid, switch);
                if slot.is_none() {
                    stuck.insert(model);
                }
                slot.map(|slot| (pid, slot))
            })
        })?;
        self.scheduler.take(picked.0);
        Some(picked)
    }

    fn any_free_slot(&self) -> bool {
        self.slots.iter().enumerate().any(|(i, s)| {
            s.is_none()
                && self
                    .pool
                    .backend_of(i as u32)
                    .is_some_and(|b| self.pool.takes(b, None))
        })
    }

    /// The free slot `pid` would run on (see the module docs), if any; a `swap` server with
    /// another model loaded counts only with `switch` and when idle.
    fn place(&self, pid: Pid, switch: bool) -> Option<u32> {
        let model = self.model_of(pid);
        let last = self.table.get(&pid).and_then(|p| p.last_slot);
        let fits = |slot: u32| {
            self.slots.get(slot as usize) == Some(&None)
                && self.pool.backend_of(slot).is_some_and(|b| {
                    self.pool.takes(b, model) && self.model_ready(b, model, switch)
                })
        };
        if let Some(last) = last.filter(|s| fits(*s)) {
            return Some(last);
        }
        let home = last.and_then(|s| self.pool.backend_of(s));
        let free: Vec<u32> = (0..self.slots.len() as u32).filter(|s| fits(*s)).collect();
        if free.len() <= 1 {
            return free.first().copied();
        }
        // Its old backend first, then a slot whose cache no one still needs, then the longest
        // beginning in common with what the slot's cache holds, then the lowest number.
        let head = self
            .table
            .get(&pid)
            .map(|p| affinity::head(&p.conversation()))
            .unwrap_or_default();
        free.into_iter().max_by_key(|s| {
            let at_home = home.is_some() && self.pool.backend_of(*s) == home;
            let in_common = self
                .memory
                .heads
                .get(*s as usize)
                .map_or(0, |h| affinity::common_prefix(&head, h));
            (
                at_home,
                !self.cache_needed(*s, pid),
                in_common,
                std::cmp::Reverse(*s),
            )
        })
    }

    /// Whether `slot`'s cache holds the conversation of a process other than `pid` that will resume
    /// from it: one off its slot with output so far (switched out, stopped, blocked) and no swap file.
    fn cache_needed(&self, slot: u32, pid: Pid) -> bool {
        let Some(holder) = self.memory.cached.get(slot as usize).copied().flatten() else {
            return false;
        };
        holder != pid
            && self.table.get(&holder).is_some_and(|q| {
                q.state != ProcessState::Zombie
                    && q.run.is_none()
                    && (q.tokens_used > 0 || !q.output.is_empty())
                    && !self.memory.swap.holds(holder)
            })
    }

    /// Whether backend `b` can run `model` without switching its loaded model (or, with `switch`,
    /// may switch because it is idle).
    fn model_ready(&self, b: usize, model: Option<&str>, switch: bool) -> bool {
        let Some(e) = self.pool.get(b) else {
            return false;
        };
        if !e.swap || model.is_none() || e.loaded.as_deref() == model || e.loaded.is_none() {
            return true;
        }
        switch && self.busy_slots(b) == 0
    }

    /// Slots of backend `b` holding a process.
    pub(super) fn busy_slots(&self, b: usize) -> u32 {
        let Some(e) = self.pool.get(b) else {
            return 0;
        };
        let range = e.first_slot as usize..(e.first_slot + e.slots) as usize;
        self.slots
            .get(range)
            .map_or(0, |s| s.iter().flatten().count() as u32)
    }

    /// Puts `pid` on backend-owned `slot`: counts a migration or a model switch. Returns the backend
    /// and the server's own slot number.
    pub(super) fn enter_backend(&mut self, pid: Pid, slot: u32) -> (usize, u32) {
        let Some(b) = self.pool.backend_of(slot) else {
            return (0, slot);
        };
        let model = self.model_of(pid).map(String::from);
        let p = self.table.get(&pid);
        let resumed = p.is_some_and(|p| p.tokens_used > 0 || !p.output.is_empty());
        let came_from = p
            .and_then(|p| p.last_slot)
            .and_then(|s| self.pool.backend_of(s));
        if resumed && came_from.is_some_and(|from| from != b) {
            self.pool.migrations += 1;
            tracing::debug!(%pid, from = ?came_from, to = b, "process migrates");
        }
        let Some(e) = self.pool.get_mut(b) else {
            return (0, slot);
        };
        let first = e.first_slot;
        if e.swap && model.is_some() && e.loaded != model {
            if e.loaded.is_some() {
                self.pool.model_switches += 1;
                self.context_switches += 1;
            }
            if let Some(e) = self.pool.get_mut(b) {
                e.loaded = model;
            }
        }
        (b, slot - first)
    }

    /// Whether the running process on `slot` may give it to `waiting` at a quantum boundary: only if
    /// `waiting` could run there (its model is served, and loaded on a `swap` server).
    pub(super) fn may_hand_over(&self, slot: u32, waiting: Pid) -> bool {
        let model = self.model_of(waiting);
        self.pool.backend_of(slot).is_some_and(|b| {
            let e = self.pool.get(b);
            e.is_some_and(|e| {
                !e.removed
                    && e.serves(model)
                    && (!e.swap || model.is_none() || e.loaded.as_deref() == model)
            })
        })
    }

    /// With several backends, a run that failed transiently takes its backend down and its
    /// process continues elsewhere. Returns the backend taken down.
    pub(super) fn backend_failed(&mut self, slot: u32, reason: String) -> Option<usize> {
        if !self.pool.is_multi() {
            return None;
        }
        let b = self.pool.backend_of(slot)?;
        self.pool.mark_down(b, reason);
        Some(b)
    }

    /// Replaces the one-backend pool with the configured backends (at start), sizing the slot table.
    pub fn set_backends(&mut self, backends: &[(BackendSpec, Discovered)]) {
        let mut pool = Pool::default();
        let mut first = 0;
        for (spec, found) in backends {
            pool.add(spec, found.slots, found.models.clone(), first);
            first += found.slots;
        }
        self.pool = pool;
        self.resize_slots(first);
    }

    /// Adds a backend (a reload); returns its index.
    pub fn add_backend(&mut self, spec: &BackendSpec, found: Discovered) -> usize {
        let first = self.slots.len() as u32;
        let index = self.pool.add(spec, found.slots, found.models, first);
        self.resize_slots(first + found.slots);
        tracing::info!(backend = %spec.name, slots = found.slots, "backend added");
        index
    }

    fn resize_slots(&mut self, total: u32) {
        self.slots.resize(total as usize, None);
        self.memory.cached.resize(total as usize, None);
        self.memory.heads.resize(total as usize, String::new());
        let live: u32 = self
            .pool
            .entries()
            .iter()
            .filter(|e| !e.removed)
            .map(|e| e.slots)
            .sum();
        self.config.cpus = live.max(1);
    }

    /// Removes the backend named `name` (a reload): it takes no new work, and its running processes
    /// whose model another backend serves move there now (their output kept); the others finish
    /// where they are. Returns whether there was such a backend.
    pub fn remove_backend(&mut self, name: &str) -> bool {
        let Some(b) = self.pool.index_of(name) else {
            return false;
        };
        if let Some(e) = self.pool.get_mut(b) {
            e.removed = true;
        }
        let Some(e) = self.pool.get(b).cloned() else {
            return false;
        };
        let range = e.first_slot as usize..(e.first_slot + e.slots) as usize;
        let on_it: Vec<Pid> = self.slots[range].iter().flatten().copied().collect();
        for pid in on_it {
            let movable = self.pool.check_model(self.model_of(pid)).is_ok();
            let running = self
                .table
                .get(&pid)
                .is_some_and(|p| p.state == ProcessState::Running);
            if movable && running {
                self.switch_out(pid, false);
            }
        }
        self.resize_slots(self.slots.len() as u32);
        tracing::info!(backend = %name, "backend removed; its work drains to the others");
        true
    }

    /// Every backend as `sched` shows it (the kind as configured; the verb fills in a learned one).
    pub fn backend_table(&self) -> BackendTable {
        let now = self.now_ms();
        let backends = self
            .pool
            .entries()
            .iter()
            .enumerate()
            .map(|(i, e)| BackendRow {
                name: e.name.clone(),
                url: e.url.clone(),
                kind: "auto".into(),
                up: e.up,
                removed: e.removed,
                first_slot: e.first_slot,
                slots: e.slots,
                busy: self.busy_slots(i),
                models: e.models.clone(),
                tokens: e.tokens,
                tokens_per_sec: e.tokens_per_sec(now),
                swap: e.swap,
                loaded_model: e.loaded.clone(),
                down_reason: e.down_reason.clone(),
            })
            .collect();
        BackendTable {
            backends,
            migrations: self.pool.migrations,
            model_switches: self.pool.model_switches,
        }
    }

    /// The models of every live backend as an OpenAI model list, for the front door's
    /// `GET /v1/models`; `None` with one backend (the door then shows that server's own list).
    pub fn pool_model_list(&self) -> Option<serde_json::Value> {
        if !self.pool.is_multi() {
            return None;
        }
        let mut models: Vec<&str> = self
            .pool
            .entries()
            .iter()
            .filter(|e| !e.removed)
            .flat_map(|e| e.models.iter().map(String::as_str))
            .collect();
        models.sort_unstable();
        models.dedup();
        let data: Vec<_> = models
            .iter()
            .map(|id| serde_json::json!({ "id": id, "object": "model", "owned_by": "llmkernel" }))
            .collect();
        Some(serde_json::json!({ "object": "list", "data": data }))
    }

    /// `, 1 of 2 backends down` for the status line, while any live backend is down.
    pub fn backends_down_note(&self) -> Option<String> {
        let live = || self.pool.entries().iter().filter(|e| !e.removed);
        let down = live().filter(|e| !e.up).count();
        (down > 0).then(|| format!(", {down} of {} backends down", live().count()))
    }
}
