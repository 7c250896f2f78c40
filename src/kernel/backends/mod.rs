//! The pool of backends (SMP): which of the kernel's slots belong to which server, the models each
//! serves, whether each is up, and what each has done. The kernel's slots are one table; backend `i`
//! owns the slots `first_slot .. first_slot + slots` of it, and the slot the server is told is the
//! index within that range. A backend is never forgotten while the kernel runs: a removed one
//! (SIGHUP) keeps its index, so slots and runs in flight keep their meaning, and takes no new work.
//!
//! The pool decides nothing by itself; the state ([`crate::kernel::state`]) asks it where a process
//! may run. Its health is learned from runs (a transient failure takes a backend down) and from a
//! probe task ([`watch_return`]) that brings it back once its health check answers.

mod discover;
pub mod start;

pub use discover::{Discovered, discover};

use crate::config::backends::BackendSpec;
use std::collections::VecDeque;

/// Seconds of token counts kept for a backend's tokens/s.
const RATE_WINDOW_SECS: u64 = 10;

/// One backend of the pool.
#[derive(Clone, Debug)]
pub struct PoolEntry {
    pub name: String,
    pub url: String,
    /// Its first slot in the kernel's slot table.
    pub first_slot: u32,
    pub slots: u32,
    /// The models it serves; empty: whatever it is asked for.
    pub models: Vec<String>,
    /// Its health: a transient failure takes it down, its probe brings it back.
    pub up: bool,
    /// Removed by a reload: it takes no new work; its running processes move or finish.
    pub removed: bool,
    /// A probe task is waiting for it to come back.
    pub probing: bool,
    /// One model at a time: the model it holds now.
    pub swap: bool,
    pub loaded: Option<String>,
    /// Tokens generated on it, all runs together.
    pub tokens: u64,
    /// Tokens per second of the kernel clock, the last [`RATE_WINDOW_SECS`] seconds.
    rate: VecDeque<(u64, u32)>,
    /// Why it is down, when it is.
    pub down_reason: Option<String>,
}

/// Every backend, and what moving processes between them has done.
#[derive(Clone, Debug, Default)]
pub struct Pool {
    entries: Vec<PoolEntry>,
    /// Processes resumed on another backend than the one they last ran on.
    pub migrations: u64,
    /// Model switches on `swap` backends (each also counted as a context switch).
    pub model_switches: u64,
    /// Backends just taken down whose probe the kernel must start ([`watch_return`]).
    pub probes_due: Vec<usize>,
}

impl Pool {
    /// A pool of one backend with `slots` slots serving whatever it is asked for (the `[backend]`
    /// form).
    pub fn single(url: &str, slots: u32) -> Pool {
        let mut pool = Pool::default();
        let spec = BackendSpec {
            name: "b1".into(),
            url: url.into(),
            kind: Default::default(),
            slots: Some(slots),
            models: Vec::new(),
            command: None,
            swap: false,
        };
        pool.add(&spec, slots, Vec::new(), 0);
        pool
    }

    /// Adds a backend whose slots start at `first_slot`; returns its index.
    pub fn add(
        &mut self,
        spec: &BackendSpec,
        slots: u32,
        models: Vec<String>,
        first: u32,
    ) -> usize {
        self.entries.push(PoolEntry {
            name: spec.name.clone(),
            url: spec.url.clone(),
            first_slot: first,
            slots,
            models,
            up: true,
            removed: false,
            probing: false,
            swap: spec.swap,
            loaded: None,
            tokens: 0,
            rate: VecDeque::new(),
            down_reason: None,
        });
        self.entries.len() - 1
    }

    pub fn entries(&self) -> &[PoolEntry] {
        &self.entries
    }

    pub fn get(&self, index: usize) -> Option<&PoolEntry> {
        self.entries.get(index)
    }

    pub fn get_mut(&mut self, index: usize) -> Option<&mut PoolEntry> {
        self.entries.get_mut(index)
    }

    /// Several backends: a failing one takes itself out of the pool instead of holding every
    /// process back (see [`crate::kernel::circuit`] for the one-backend rule).
    pub fn is_multi(&self) -> bool {
        self.entries.len() > 1
    }

    /// The live (not removed) backend named `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| e.name == name && !e.removed)
    }

    /// The backend owning kernel slot `slot`.
    pub fn backend_of(&self, slot: u32) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| (e.first_slot..e.first_slot + e.slots).contains(&slot))
    }

    /// Whether backend `i` may take new work for `model` (`None`: the default, any backend).
    pub fn takes(&self, i: usize, model: Option<&str>) -> bool {
        self.entries
            .get(i)
            .is_some_and(|e| e.up && !e.removed && e.serves(model))
    }

    /// Whether some live backend serves `model`, else the models there are.
    pub fn check_model(&self, model: Option<&str>) -> Result<(), Vec<String>> {
        let live = || self.entries.iter().filter(|e| !e.removed);
        if live().any(|e| e.serves(model)) {
            return Ok(());
        }
        let mut models: Vec<String> = live().flat_map(|e| e.models.clone()).collect();
        models.sort();
        models.dedup();
        Err(models)
    }

    /// Counts one token generated on `slot` at kernel-clock `now_ms`.
    pub fn count_token(&mut self, slot: u32, now_ms: u64) {
        let Some(e) = self.backend_of(slot).and_then(|i| self.entries.get_mut(i)) else {
            return;
        };
        e.tokens += 1;
        let second = now_ms / 1000;
        match e.rate.back_mut() {
            Some((s, n)) if *s == second => *n += 1,
            _ => e.rate.push_back((second, 1)),
        }
        while e
            .rate
            .front()
            .is_some_and(|(s, _)| s + RATE_WINDOW_SECS <= second)
        {
            e.rate.pop_front();
        }
    }

    /// Takes backend `i` down; returns whether a probe should be started for it (none runs yet).
    pub fn mark_down(&mut self, i: usize, reason: String) -> bool {
        let Some(e) = self.entries.get_mut(i) else {
            return false;
        };
        if e.up {
            tracing::warn!(backend = %e.name, "backend down, its work moves: {reason}");
        }
        e.up = false;
        e.loaded = None;
        e.down_reason = Some(reason);
        let start = !std::mem::replace(&mut e.probing, true);
        if start {
            self.probes_due.push(i);
        }
        start
    }

    /// Brings backend `i` back after its probe saw it answer.
    pub fn mark_up(&mut self, i: usize) {
        if let Some(e) = self.entries.get_mut(i) {
            if !e.up {
                tracing::info!(backend = %e.name, "backend up again");
            }
            e.up = true;
            e.probing = false;
            e.down_reason = None;
        }
    }
}

impl PoolEntry {
    /// Whether it serves `model` (`None`: the default, which every backend serves).
    pub fn serves(&self, model: Option<&str>) -> bool {
        match model {
            None => true,
            Some(m) => self.models.is_empty() || self.models.iter().any(|x| x == m),
        }
    }

    /// Tokens per second over the last few seconds of `now_ms`.
    pub fn tokens_per_sec(&self, now_ms: u64) -> u32 {
        let second = now_ms / 1000;
        let recent: u64 = self
            .rate
            .iter()
            .filter(|(s, _)| s + RATE_WINDOW_SECS > second)
            .map(|(_, n)| u64::from(*n))
            .sum();
        u32::try_from(recent / RATE_WINDOW_SECS).unwrap_or(u32::MAX)
    }
}

/// Waits for backend `index` to answer its health check again, then puts it back in the pool. The
/// wait between tries follows the retry settings' backoff.
pub async fn watch_return(kernel: std::sync::Arc<super::Kernel>, index: usize) {
    let Some(client) = kernel.client(index) else {
        return;
    };
    let mut wait = kernel.read(|s| s.config.retry.backoff_initial);
    loop {
        tokio::select! {
            () = kernel.shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        let removed = kernel.read(|s| s.pool.get(index).is_none_or(|e| e.removed));
        if removed {
            kernel.update(|s| s.pool.mark_up(index));
            return;
        }
        if client.is_up().await {
            kernel.update(|s| s.pool.mark_up(index));
            return;
        }
        let max = kernel.read(|s| s.config.retry.backoff_max);
        wait = (wait * 2).min(max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> BackendSpec {
        BackendSpec {
            name: name.into(),
            url: format!("http://{name}:1/v1"),
            kind: Default::default(),
            slots: None,
            models: vec![],
            command: None,
            swap: false,
        }
    }

    #[test]
    fn slots_map_to_their_backend_and_models_to_who_serves_them() {
        let mut pool = Pool::default();
        pool.add(&spec("a"), 2, vec!["small".into()], 0);
        pool.add(&spec("b"), 3, vec!["big".into(), "small".into()], 2);
        assert_eq!(pool.backend_of(1), Some(0));
        assert_eq!(pool.backend_of(2), Some(1));
        assert_eq!(pool.backend_of(5), None);
        assert!(pool.takes(0, Some("small")) && !pool.takes(0, Some("big")));
        assert!(pool.takes(1, None));
        assert_eq!(
            pool.check_model(Some("huge")).unwrap_err(),
            ["big", "small"]
        );
        assert!(pool.mark_down(1, "gone".into()));
        assert!(!pool.mark_down(1, "gone".into()), "one probe at a time");
        assert!(!pool.takes(1, Some("big")));
        assert!(pool.check_model(Some("big")).is_ok(), "down is not gone");
        pool.mark_up(1);
        assert!(pool.takes(1, Some("big")));
    }

    #[test]
    fn tokens_per_second_count_the_recent_window() {
        let mut pool = Pool::single("http://a:1/v1", 1);
        for ms in (0..10_000).step_by(100) {
            pool.count_token(0, ms);
        }
        assert_eq!(pool.get(0).unwrap().tokens_per_sec(9_999), 10);
        assert_eq!(pool.get(0).unwrap().tokens_per_sec(60_000), 0);
    }
}
