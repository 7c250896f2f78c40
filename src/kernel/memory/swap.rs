//! Swap: on llama-server started with `--slot-save-path DIR` (and `[swap] dir = DIR` here), the KV
//! cache of a slot whose process was switched out is saved to a file in DIR when the slot is about to
//! be given to another process, and restored into whatever slot the process resumes on, so its
//! conversation is not evaluated again. The files are bounded (`[swap] max_bytes`, the least recently
//! used removed first) and removed when their process ends. Across a kernel restart (a crash
//! included) a file is reused only when its record is whole, its process was restored from the
//! journal, and the server still has the identity that saved it; else it is removed
//! ([`super::swap_record`]). A restore the server silently loses (sliding-window and hybrid models) is noticed from the
//! next answer's cached-token count: the server recomputes, and swap turns itself off.
//!
//! The state plans a switch under its lock ([`SwapSpace::plan`]); the run task carries the plan out
//! ([`carry_out`]) before its generation starts, and reports back.

use super::swap_record::{self, FILE_PREFIX, FILE_SUFFIX, Record};
use crate::config::SwapConfig;
use crate::kernel::Kernel;
use crate::llm::Backend;
use crate::proto::Pid;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One swapped-out process's file.
#[derive(Clone, Debug, PartialEq, Eq)]
struct SwapFile {
    bytes: u64,
    tokens: u32,
    /// Higher is more recently used (least recently used leaves first).
    used: u64,
    /// For a file an earlier kernel saved: the server identity its record names, which the server
    /// must still have for the file to be restored.
    earlier_server: Option<String>,
}

/// The swap files and their bound.
#[derive(Debug, Default)]
pub struct SwapSpace {
    /// The server's `--slot-save-path`; `None`: swap is off.
    dir: Option<PathBuf>,
    max_bytes: u64,
    /// Conversations shorter than this are recomputed rather than swapped.
    min_tokens: u32,
    files: HashMap<Pid, SwapFile>,
    clock: u64,
    /// Why swap turned itself off, if it did.
    pub off_reason: Option<String>,
    pub saves: u64,
    pub restores: u64,
    pub lost_restores: u64,
}

/// What a run must do with the server's slot caches before its generation starts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SwapPlan {
    /// Save the slot's cache (another process's conversation) first.
    pub save: Option<(Pid, String)>,
    /// Then restore this process's saved conversation into the slot.
    pub restore: Option<String>,
    /// Restore only if the server still has this identity (a file an earlier kernel saved).
    pub restore_if_server: Option<String>,
}

impl SwapPlan {
    pub fn is_empty(&self) -> bool {
        self.save.is_none() && self.restore.is_none()
    }
}

/// The file name of `pid`'s swap file (relative to the server's save path, as the server wants it).
pub fn file_name(pid: Pid) -> String {
    format!("{FILE_PREFIX}{pid}{FILE_SUFFIX}")
}

impl SwapSpace {
    /// Swap as configured, with the files an earlier kernel left in the directory whole (with
    /// their records); the kernel's other leftovers there are removed. Once the journal is read,
    /// [`SwapSpace::keep_only`] drops those whose process is gone.
    pub fn new(config: &SwapConfig) -> SwapSpace {
        let leftovers = config
            .dir
            .as_deref()
            .map(swap_record::scan)
            .unwrap_or_default();
        let files = leftovers
            .into_iter()
            .map(|l| {
                let file = SwapFile {
                    bytes: l.bytes,
                    tokens: l.record.tokens,
                    used: 0,
                    earlier_server: Some(l.record.server),
                };
                (l.pid, file)
            })
            .collect();
        SwapSpace {
            dir: config.dir.clone(),
            max_bytes: config.max_bytes,
            min_tokens: config.min_tokens,
            files,
            ..SwapSpace::default()
        }
    }

    /// Keeps the swap files of the processes `resumable` names (restored from the journal, not
    /// ended) and removes the others'; returns the pids kept.
    pub fn keep_only(&mut self, resumable: impl Fn(Pid) -> bool) -> Vec<Pid> {
        let gone: Vec<Pid> = self
            .files
            .keys()
            .filter(|p| !resumable(**p))
            .copied()
            .collect();
        for pid in gone {
            self.discard(pid);
        }
        let mut kept: Vec<Pid> = self.files.keys().copied().collect();
        kept.sort();
        kept
    }

    pub fn enabled(&self) -> bool {
        self.dir.is_some() && self.off_reason.is_none()
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    pub fn used_bytes(&self) -> u64 {
        self.files.values().map(|f| f.bytes).sum()
    }

    pub fn processes(&self) -> u32 {
        self.files.len() as u32
    }

    /// Whether `pid` has a swap file.
    pub fn holds(&self, pid: Pid) -> bool {
        self.files.contains_key(&pid)
    }

    /// The plan for `pid` starting on a slot whose cache holds `cached`'s conversation of
    /// `cached_tokens` tokens (`cached` alive and not running).
    pub fn plan(&self, pid: Pid, cached: Option<(Pid, u32)>) -> SwapPlan {
        if !self.enabled() {
            return SwapPlan::default();
        }
        let save = cached
            .filter(|(q, tokens)| *q != pid && *tokens >= self.min_tokens && !self.holds(*q))
            .map(|(q, _)| (q, file_name(q)));
        let restore =
            (cached.map(|(q, _)| q) != Some(pid) && self.holds(pid)).then(|| file_name(pid));
        let restore_if_server = restore
            .as_ref()
            .and_then(|_| self.files.get(&pid)?.earlier_server.clone());
        SwapPlan {
            save,
            restore,
            restore_if_server,
        }
    }

    /// `pid`'s cache is saved; returns the processes evicted to stay within `max_bytes`.
    pub fn saved(&mut self, pid: Pid, bytes: u64, tokens: u32) -> Vec<Pid> {
        self.clock += 1;
        self.saves += 1;
        let used = self.clock;
        self.files.insert(
            pid,
            SwapFile {
                bytes,
                tokens,
                used,
                earlier_server: None,
            },
        );
        let mut evicted = Vec::new();
        while self.used_bytes() > self.max_bytes {
            let Some(oldest) = self
                .files
                .iter()
                .min_by_key(|(_, f)| f.used)
                .map(|(p, _)| *p)
            else {
                break;
            };
            self.discard(oldest);
            evicted.push(oldest);
        }
        evicted
    }

    /// `pid`'s file was restored (or failed to be): it is not swapped out any more. Returns the
    /// tokens it held.
    pub fn restored(&mut self, pid: Pid) -> Option<u32> {
        let file = self.files.get(&pid)?.tokens;
        self.restores += 1;
        self.discard(pid);
        Some(file)
    }

    /// A restore the server lost: count it and turn swap off (the model cannot keep restored caches).
    pub fn lost(&mut self, expected: u32, cached: u32) {
        self.lost_restores += 1;
        let reason = format!(
            "the server reported {cached} cached tokens after restoring {expected}; swap is off"
        );
        tracing::warn!("{reason}");
        self.off_reason = Some(reason);
    }

    /// Removes `pid`'s swap file and its record, if it has them.
    pub fn discard(&mut self, pid: Pid) {
        if self.files.remove(&pid).is_some()
            && let Some(dir) = &self.dir
        {
            remove_later(dir.clone(), pid);
        }
    }
}

/// Removes `pid`'s swap file and record off the kernel's lock: on the runtime's blocking pool when
/// there is one.
fn remove_later(dir: PathBuf, pid: Pid) {
    let remove = move || swap_record::remove_pair(&dir, pid);
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => drop(handle.spawn_blocking(remove)),
        Err(_) => remove(),
    }
}

/// Carries out `plan` on `slot` before `pid`'s generation starts. Failures are logged and fall back
/// to recomputing: a failed save leaves the other process to recompute, a failed restore this one.
pub async fn carry_out(
    kernel: &Arc<Kernel>,
    backend: &Backend,
    pid: Pid,
    slot: u32,
    plan: &SwapPlan,
) {
    if let Some((owner, name)) = &plan.save {
        match backend.save_slot(slot, name).await {
            Ok(file) => {
                record(kernel, backend, *owner, file.tokens).await;
                kernel.update(|s| s.swapped_out(*owner, file));
            }
            // A server that refuses saves (no `--slot-save-path`, not llama-server) will go on
            // refusing: swap turns off rather than asking at every switch.
            Err(e @ crate::llm::BackendError::Http { .. }) => {
                let reason = format!("the server refused to save slot {slot} ({e}); swap is off");
                tracing::warn!("{reason}");
                kernel.update(|s| s.memory.swap.off_reason = Some(reason));
            }
            Err(e) => tracing::warn!(pid = %owner, "swap: saving slot {slot} failed: {e}"),
        }
    }
    if let Some(name) = &plan.restore {
        if let Some(expected) = &plan.restore_if_server
            && !server_still_is(backend, pid, expected).await
        {
            kernel.update(|s| s.memory.swap.discard(pid));
            return;
        }
        let restored = backend.restore_slot(slot, name).await;
        if let Err(e) = &restored {
            tracing::warn!(%pid, "swap: restoring into slot {slot} failed, recomputing: {e}");
        }
        kernel.update(|s| s.swapped_in(pid, restored.ok()));
    }
}

/// Writes the record of `owner`'s freshly saved file, so that a kernel restart can reuse it. A
/// server that does not say who it is gets no record: its file is not reused after a restart.
async fn record(kernel: &Arc<Kernel>, backend: &Backend, owner: Pid, tokens: u32) {
    let Some(dir) = kernel.read(|s| s.memory.swap.dir().map(Path::to_path_buf)) else {
        return;
    };
    let Some(server) = backend.server_identity().await else {
        return;
    };
    if let Err(e) = swap_record::write(&dir, owner, &Record { server, tokens }).await {
        tracing::warn!(pid = %owner, "swap: cannot write the record of its file: {e}");
    }
}

/// Whether the server is still the one that saved `pid`'s file before the kernel restarted.
async fn server_still_is(backend: &Backend, pid: Pid, expected: &str) -> bool {
    let now = backend.server_identity().await;
    let same = now.as_deref() == Some(expected);
    if !same {
        tracing::info!(
            %pid,
            "swap: its file was saved by another server ({expected}; now {}): recomputing",
            now.as_deref().unwrap_or("unknown")
        );
    }
    same
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(max_bytes: u64) -> SwapSpace {
        SwapSpace {
            dir: Some(std::env::temp_dir().join("llmkernel-swap-test-none")),
            max_bytes,
            ..SwapSpace::default()
        }
    }

    #[test]
    fn a_slot_held_by_another_is_saved_and_ones_own_file_restored() {
        let mut s = space(1000);
        let plan = s.plan(Pid(2), Some((Pid(1), 50)));
        assert_eq!(plan.save, Some((Pid(1), file_name(Pid(1)))));
        assert_eq!(plan.restore, None);
        s.saved(Pid(1), 100, 50);
        let plan = s.plan(Pid(1), Some((Pid(2), 50)));
        assert_eq!(plan.restore, Some(file_name(Pid(1))));
        assert_eq!(s.plan(Pid(1), Some((Pid(1), 50))), SwapPlan::default());
    }

    #[test]
    fn swap_beyond_its_bound_evicts_the_least_recently_used() {
        let mut s = space(250);
        assert!(s.saved(Pid(1), 100, 10).is_empty());
        assert!(s.saved(Pid(2), 100, 10).is_empty());
        assert_eq!(s.saved(Pid(3), 100, 10), vec![Pid(1)]);
        assert_eq!((s.processes(), s.used_bytes()), (2, 200));
    }

    #[test]
    fn swap_off_plans_nothing_and_short_conversations_are_not_saved() {
        let mut s = space(1000);
        s.min_tokens = 100;
        assert_eq!(s.plan(Pid(2), Some((Pid(1), 50))), SwapPlan::default());
        s.lost(50, 0);
        s.min_tokens = 0;
        assert_eq!(s.plan(Pid(2), Some((Pid(1), 50))), SwapPlan::default());
    }
}
