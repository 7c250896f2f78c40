//! Token quotas (see [`crate::config::quotas`]): every generated token is charged to its process's
//! owner and type, in fixed windows on the kernel clock. A process whose owner or type has used its
//! quota does not fail: picked for a slot, it is held off the run queue, still waiting (STAT `Q`, with
//! the note `quota: 0 of 200k/hour left in 14 min`), until the window renews; a running one leaves
//! its slot at its next quantum boundary. A held process is out of the policy too, so under `fair`
//! the users within their quotas share the slots between them. What each subject used in its window
//! is journaled at quantum boundaries, at each end and in every compaction, so it survives a restart.

use super::KernelState;
use crate::config::quotas::{QuotaLimit, QuotaSubject, short_tokens};
use crate::kernel::journal::record::Record;
use crate::proto::{Pid, ProcessState};
use std::collections::{BTreeMap, BTreeSet};

/// What quotas have counted and whom they hold.
#[derive(Debug, Default)]
pub struct QuotaLedger {
    /// Tokens each subject used in its current window: (window start, tokens), kernel-clock ms.
    used: BTreeMap<QuotaSubject, (u64, u64)>,
    /// Processes held off the run queue, and when their quota renews.
    held: BTreeMap<Pid, u64>,
    /// When the armed renewal timer fires, if one is armed and has not fired yet.
    armed_at: Option<u64>,
    /// Subjects charged since their use was last journaled.
    unrecorded: BTreeSet<QuotaSubject>,
}

impl QuotaLedger {
    /// Tokens `subject` used in the window of `limit` that holds `now_ms`.
    fn used_now(&self, subject: QuotaSubject, limit: &QuotaLimit, now_ms: u64) -> u64 {
        let start = window_start(now_ms, limit);
        match self.used.get(&subject) {
            Some((at, tokens)) if *at == start => *tokens,
            _ => 0,
        }
    }

    fn charge(&mut self, subject: QuotaSubject, limit: &QuotaLimit, tokens: u64, now_ms: u64) {
        let start = window_start(now_ms, limit);
        let entry = self.used.entry(subject).or_insert((start, 0));
        if entry.0 != start {
            *entry = (start, 0);
        }
        entry.1 = entry.1.saturating_add(tokens);
        self.unrecorded.insert(subject);
    }

    /// Takes back what the journal remembered.
    pub fn restore(&mut self, used: BTreeMap<QuotaSubject, (u64, u64)>) {
        self.used = used;
    }
}

/// The start of the window of `limit` that holds `now_ms`.
fn window_start(now_ms: u64, limit: &QuotaLimit) -> u64 {
    now_ms - now_ms % limit.window_ms.max(1)
}

/// How long until a renewal, as the note says it: `14 min`, `40s`, `3 h`.
fn until(ms: u64) -> String {
    match ms {
        0..60_000 => format!("{}s", ms.div_ceil(1000)),
        60_000..7_200_000 => format!("{} min", ms.div_ceil(60_000)),
        _ => format!("{} h", ms.div_ceil(3_600_000)),
    }
}

/// One subject's use, for the `quota` verb.
pub struct QuotaUse {
    pub subject: QuotaSubject,
    pub used: u64,
    pub limit: QuotaLimit,
    pub renews_in_ms: u64,
    /// Processes held for this quota now.
    pub held: u32,
}

impl KernelState {
    /// The quota that `pid` has used up, if any: (its subject, when it renews).
    fn exhausted_quota(&self, pid: Pid, now_ms: u64) -> Option<(QuotaSubject, u64)> {
        let p = self.table.get(&pid)?;
        self.config
            .quotas
            .applying(p.spec.uid, p.spec.process_type)
            .filter(|(s, l)| self.quotas.used_now(*s, l, now_ms) >= l.tokens)
            .map(|(s, l)| (s, window_start(now_ms, l) + l.window_ms))
            .max_by_key(|(_, renews)| *renews)
    }

    /// Whether the just-picked `pid` must wait for its quota: if so it is held off the queue (and
    /// out of the policy) until the quota renews, still waiting.
    pub(super) fn held_for_quota(&mut self, pid: Pid, now_ms: u64) -> bool {
        let Some((_, renews_at)) = self.exhausted_quota(pid, now_ms) else {
            return false;
        };
        self.scheduler.retire(pid);
        self.quotas.held.insert(pid, renews_at);
        true
    }

    /// Puts back on the queue the held processes whose quota has renewed (and that still wait).
    pub(super) fn release_quota_holds(&mut self, now_ms: u64) {
        let renewed: Vec<Pid> = self
            .quotas
            .held
            .iter()
            .filter(|(_, at)| **at <= now_ms)
            .map(|(pid, _)| *pid)
            .collect();
        for pid in renewed {
            self.quotas.held.remove(&pid);
            let waits = self
                .table
                .get(&pid)
                .is_some_and(|p| p.state == ProcessState::Waiting && p.run.is_none());
            if waits {
                self.enqueue(pid);
            }
        }
    }

    /// At a quantum boundary: whether `pid`'s quota is used up, and if so its run ends here (its
    /// output kept); it queues again and is held until the quota renews.
    pub(super) fn leaves_for_quota(&mut self, pid: Pid, now_ms: u64) -> bool {
        if self.exhausted_quota(pid, now_ms).is_none() {
            return false;
        }
        let Some(run) = self.table.get_mut(&pid).and_then(|p| p.run.as_mut()) else {
            return false;
        };
        run.ending = true;
        run.cancel.cancel();
        true
    }

    /// Charges one generated token of `pid` to its quotas; returns whether one is now used up.
    pub(super) fn charge_quotas(&mut self, pid: Pid, now_ms: u64) -> bool {
        let Some(p) = self.table.get(&pid) else {
            return false;
        };
        let applying: Vec<(QuotaSubject, QuotaLimit)> = self
            .config
            .quotas
            .applying(p.spec.uid, p.spec.process_type)
            .map(|(s, l)| (s, l.clone()))
            .collect();
        let mut exhausted = false;
        for (subject, limit) in applying {
            self.quotas.charge(subject, &limit, 1, now_ms);
            exhausted |= self.quotas.used_now(subject, &limit, now_ms) >= limit.tokens;
        }
        exhausted
    }

    /// The note of a held process: `quota: 0 of 200k/hour left in 14 min`.
    pub(super) fn quota_note(&self, pid: Pid, now_ms: u64) -> Option<String> {
        if !self.quotas.held.contains_key(&pid) {
            return None;
        }
        let (subject, renews_at) = self.exhausted_quota(pid, now_ms)?;
        let limit = self.config.quotas.limits.get(&subject)?;
        let left = limit
            .tokens
            .saturating_sub(self.quotas.used_now(subject, limit, now_ms));
        let wait = until(renews_at.saturating_sub(now_ms));
        Some(format!(
            "quota: {} of {limit} left in {wait}",
            short_tokens(left)
        ))
    }

    /// Journals what the quotas charged since the last time.
    pub(super) fn record_quota_use(&mut self) {
        let subjects = std::mem::take(&mut self.quotas.unrecorded);
        for subject in subjects {
            if let Some((window_start_ms, tokens)) = self.quotas.used.get(&subject).copied() {
                self.record(Record::QuotaUsed {
                    subject,
                    window_start_ms,
                    tokens,
                });
            }
        }
    }

    /// Every subject's use, as compaction writes it.
    pub(super) fn quota_records(&self) -> Vec<Record> {
        let used = self.quotas.used.iter();
        used.map(|(subject, (window_start_ms, tokens))| Record::QuotaUsed {
            subject: *subject,
            window_start_ms: *window_start_ms,
            tokens: *tokens,
        })
        .collect()
    }

    /// How long until the earliest held process's quota renews, once per renewal: the caller arms
    /// a timer to dispatch again then.
    pub fn quota_timer(&mut self) -> Option<std::time::Duration> {
        let now = self.now_ms();
        let next = self.quotas.held.values().min().copied()?;
        if self.quotas.armed_at.is_some_and(|a| a > now && a <= next) {
            return None;
        }
        self.quotas.armed_at = Some(next);
        Some(std::time::Duration::from_millis(next.saturating_sub(now)))
    }

    /// Each configured quota's use now (`quota`).
    pub fn quota_use(&self) -> Vec<QuotaUse> {
        let now = self.now_ms();
        self.config
            .quotas
            .limits
            .iter()
            .map(|(subject, limit)| QuotaUse {
                subject: *subject,
                used: self.quotas.used_now(*subject, limit, now),
                limit: limit.clone(),
                renews_in_ms: window_start(now, limit) + limit.window_ms - now,
                held: self
                    .quotas
                    .held
                    .keys()
                    .filter(|pid| {
                        self.table.get(pid).is_some_and(|p| match subject {
                            QuotaSubject::User(uid) => p.spec.uid == *uid,
                            QuotaSubject::Type(t) => p.spec.process_type == *t,
                        })
                    })
                    .count() as u32,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn use_is_counted_per_window_and_starts_again_in_the_next() {
        let mut ledger = QuotaLedger::default();
        let limit = QuotaLimit {
            tokens: 10,
            window_ms: 1000,
        };
        let alice = QuotaSubject::User(1000);
        ledger.charge(alice, &limit, 7, 1500);
        ledger.charge(alice, &limit, 2, 1999);
        assert_eq!(ledger.used_now(alice, &limit, 1999), 9);
        assert_eq!(ledger.used_now(alice, &limit, 2000), 0, "a new window");
        ledger.charge(alice, &limit, 1, 2000);
        assert_eq!(ledger.used.get(&alice), Some(&(2000, 1)));
    }

    #[test]
    fn waits_are_said_in_the_unit_that_reads_best() {
        assert_eq!(until(40_000), "40s");
        assert_eq!(until(14 * 60_000 - 5), "14 min");
        assert_eq!(until(3 * 3_600_000), "3 h");
    }
}
