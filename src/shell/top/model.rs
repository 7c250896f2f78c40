//! What `top` shows, kept up to date from the kernel's events: the rows, the machine's rates, the
//! order, the filter and the selection. No terminal here, so it is tested as plain data.

use crate::proto::{BackendHealth, Event, Pid, ProcessInfo, ProcessState};
use std::collections::{BTreeMap, HashMap};

/// The column the table is sorted by (htop's keys: `P` CPU, `T` time, `M` memory).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    Pid,
    /// `P`: tokens per second, busiest first.
    Rate,
    /// `T`: time on a slot, longest first.
    Time,
    /// `M`: tokens generated, most first.
    Tokens,
}

#[derive(Default)]
pub struct Model {
    rows: BTreeMap<Pid, ProcessInfo>,
    rates: HashMap<Pid, f64>,
    pub cpus: u32,
    pub policy: String,
    pub queue: u32,
    pub running: u32,
    pub tokens_per_s: f64,
    pub switches_per_s: f64,
    pub context_switches: u64,
    pub backend: Option<BackendHealth>,
    pub sort: Option<SortKey>,
    pub filter: String,
    pub tree: bool,
    pub selected: Option<Pid>,
    /// Events lost because `top` read too slowly, since it started.
    pub lost: u64,
}

impl Model {
    /// Takes in one event; returns whether the picture changed.
    pub fn apply(&mut self, event: Event) -> bool {
        match event {
            Event::Snapshot(s) => {
                self.rows
                    .extend(s.processes.into_iter().map(|r| (r.pid, r)));
                self.cpus = s.cpus;
                self.policy = s.policy;
                self.backend = Some(s.backend);
                self.context_switches = s.context_switches;
                self.queue = self.count(ProcessState::Waiting);
                self.running = self.count(ProcessState::Running);
            }
            Event::Created(row) | Event::Changed(row) => {
                self.rows.insert(row.pid, row);
            }
            Event::Reaped(pid) => {
                self.rows.remove(&pid);
                self.rates.remove(&pid);
            }
            Event::ContextSwitch { pid, .. } => {
                self.context_switches += 1;
                if let Some(row) = self.rows.get_mut(&pid) {
                    row.context_switches += 1;
                }
            }
            Event::Sample(s) => {
                (self.queue, self.running, self.cpus) = (s.queue, s.running, s.cpus);
                (self.tokens_per_s, self.switches_per_s) = (s.tokens_per_s, s.switches_per_s);
                self.rates.clear();
                for t in s.processes {
                    self.rates.insert(t.pid, t.tokens_per_s);
                    if let Some(row) = self.rows.get_mut(&t.pid) {
                        (row.priority, row.tokens_used) = (t.priority, t.tokens_used);
                        (row.prompt_tokens, row.cpu_ms) = (t.prompt_tokens, t.cpu_ms);
                    }
                }
            }
            Event::Backend(health) => self.backend = Some(health),
            Event::Interrupt(_) => return false,
            Event::Lost { count } => self.lost += count,
        }
        self.keep_selection();
        true
    }

    /// Replaces every row (a fresh listing after events were lost).
    pub fn replace_rows(&mut self, rows: Vec<ProcessInfo>) {
        self.rows = rows.into_iter().map(|r| (r.pid, r)).collect();
        self.keep_selection();
    }

    fn count(&self, state: ProcessState) -> u32 {
        self.rows.values().filter(|r| r.state == state).count() as u32
    }

    pub fn rate(&self, pid: Pid) -> f64 {
        self.rates.get(&pid).copied().unwrap_or(0.0)
    }

    /// The rows shown, filtered and in order. Processes have no parent links, so the tree view is
    /// the flat list.
    pub fn visible(&self) -> Vec<&ProcessInfo> {
        let filter = self.filter.to_lowercase();
        let mut rows: Vec<&ProcessInfo> = self
            .rows
            .values()
            .filter(|r| filter.is_empty() || matches_filter(r, &filter))
            .collect();
        match self.sort {
            None | Some(SortKey::Pid) => {}
            Some(SortKey::Rate) => {
                rows.sort_by(|a, b| self.rate(b.pid).total_cmp(&self.rate(a.pid)))
            }
            Some(SortKey::Time) => rows.sort_by_key(|r| std::cmp::Reverse(r.cpu_ms)),
            Some(SortKey::Tokens) => rows.sort_by_key(|r| std::cmp::Reverse(r.tokens_used)),
        }
        rows
    }

    /// Moves the selection `by` rows (negative: up), within the visible rows.
    pub fn move_selection(&mut self, by: isize) {
        let pids: Vec<Pid> = self.visible().iter().map(|r| r.pid).collect();
        let at = self
            .selected
            .and_then(|s| pids.iter().position(|p| *p == s))
            .unwrap_or(0);
        let to = at
            .saturating_add_signed(by)
            .min(pids.len().saturating_sub(1));
        self.selected = pids.get(to).copied();
    }

    pub fn selected_row(&self) -> Option<&ProcessInfo> {
        self.selected.and_then(|p| self.rows.get(&p))
    }

    /// Keeps a selection on a visible row (the first one when the selected row went away).
    pub fn keep_selection(&mut self) {
        let visible = self.visible();
        if !self
            .selected
            .is_some_and(|s| visible.iter().any(|r| r.pid == s))
        {
            let first = visible.first().map(|r| r.pid);
            self.selected = first;
        }
    }
}

fn matches_filter(row: &ProcessInfo, filter: &str) -> bool {
    row.prompt
        .as_deref()
        .is_some_and(|p| p.to_lowercase().contains(filter))
        || row.pid.to_string().contains(filter)
        || row.process_type.to_string().to_lowercase().contains(filter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{ProcessTick, ProcessType, Sample, Snapshot};

    fn row(pid: u64, prompt: &str, state: ProcessState) -> ProcessInfo {
        ProcessInfo {
            pid: Pid(pid),
            uid: 1,
            process_type: ProcessType::User,
            priority: 80,
            nice: 0,
            state,
            tokens_used: 0,
            allowance: 100,
            prompt_tokens: 0,
            cpu_ms: 0,
            age_ms: 0,
            prompt: Some(prompt.into()),
            context_switches: 0,
            slot: None,
            queue_position: None,
            exit: None,
            note: None,
            eta_ms: None,
            context: None,
        }
    }

    fn model() -> Model {
        let mut m = Model::default();
        m.apply(Event::Snapshot(Snapshot {
            processes: vec![
                row(1, "alpha", ProcessState::Running),
                row(2, "beta", ProcessState::Waiting),
            ],
            complete: true,
            cpus: 1,
            policy: "priority".into(),
            backend: BackendHealth {
                circuit: crate::proto::Circuit::Closed,
                failures: 0,
            },
            context_switches: 0,
        }));
        m
    }

    #[test]
    fn events_keep_the_table_and_the_selection_current() {
        let mut m = model();
        assert_eq!((m.running, m.queue, m.selected), (1, 1, Some(Pid(1))));
        m.apply(Event::Created(row(3, "gamma", ProcessState::Waiting)));
        m.move_selection(5);
        assert_eq!(m.selected, Some(Pid(3)));
        m.apply(Event::Reaped(Pid(3)));
        assert_eq!(m.selected, Some(Pid(1)), "back to the first row");
    }

    #[test]
    fn sorting_by_rate_and_filtering_by_prompt() {
        let mut m = model();
        let tick = |pid, rate| ProcessTick {
            pid: Pid(pid),
            priority: 80,
            tokens_used: 5,
            prompt_tokens: 0,
            cpu_ms: 10,
            tokens_per_s: rate,
        };
        m.apply(Event::Sample(Sample {
            interval_ms: 1000,
            tokens_per_s: 3.0,
            switches_per_s: 0.0,
            queue: 1,
            running: 1,
            cpus: 1,
            slots: vec![Some(Pid(2))],
            processes: vec![tick(1, 1.0), tick(2, 2.0)],
        }));
        m.sort = Some(SortKey::Rate);
        let order: Vec<u64> = m.visible().iter().map(|r| r.pid.0).collect();
        assert_eq!(order, [2, 1]);
        m.filter = "ALP".into();
        let order: Vec<u64> = m.visible().iter().map(|r| r.pid.0).collect();
        assert_eq!(order, [1]);
    }
}
