//! `fair`: weighted fair share of generated tokens, across users first and then across each user's
//! processes, in the manner of Linux CFS's virtual runtime. Every runnable process has a virtual
//! runtime that grows with each token it generates, faster the smaller its share; the process with the
//! least virtual runtime runs next, and a running one yields at a quantum boundary once it is no longer
//! the least. Shares: every user with runnable work gets an equal share of the slots; within a user,
//! processes split it by weight, 1024 at nice 0 and 1.25× per nice step (so nice 5 gets about a third
//! of nice 0's tokens). Process types do not count. It optimizes for fairness of throughput: no user
//! crowds out another by submitting more. Pick it on a shared machine with several users, or when
//! background jobs must keep a predictable share. Starvation-free: a newcomer starts one quantum behind
//! the least virtual runtime, so the least keeps rising past any waiting process's.

use super::{Candidate, Policy};
use crate::config::PolicyKind;
use crate::proto::Pid;
use std::collections::{BTreeSet, HashMap};

/// The weight of nice 0, and the virtual runtime one token adds to a lone nice-0 process.
pub const NICE_0_WEIGHT: u64 = 1024;

/// A process's weight: 1024 at nice 0, 1.25× more per step down, 1.25× less per step up.
pub fn weight(nice: i8) -> u64 {
    let w = NICE_0_WEIGHT as f64 / 1.25f64.powi(i32::from(nice));
    (w.round() as u64).max(1)
}

struct Entity {
    vruntime: u64,
    uid: u32,
    weight: u64,
}

pub struct FairPolicy {
    entities: HashMap<Pid, Entity>,
    /// The summed weight of each user's runnable processes (a user's share is split by these).
    user_weight: HashMap<u32, u64>,
    /// Runnable processes by virtual runtime: the least is the floor newcomers are placed against.
    timeline: BTreeSet<(u64, Pid)>,
    /// The least virtual runtime seen among runnable processes; never goes back.
    floor: u64,
    /// Virtual runtime a newcomer starts behind the floor: one nice-0 quantum.
    start_debit: u64,
}

impl FairPolicy {
    pub fn new(quantum_tokens: u32) -> FairPolicy {
        FairPolicy {
            entities: HashMap::new(),
            user_weight: HashMap::new(),
            timeline: BTreeSet::new(),
            floor: 0,
            start_debit: u64::from(quantum_tokens.max(1)) * NICE_0_WEIGHT,
        }
    }

    fn advance_floor(&mut self) -> u64 {
        if let Some((least, _)) = self.timeline.first() {
            self.floor = self.floor.max(*least);
        }
        self.floor
    }

    fn vruntime(&self, pid: Pid) -> u64 {
        self.entities
            .get(&pid)
            .map_or(self.floor.saturating_add(self.start_debit), |e| e.vruntime)
    }

    /// Brings a known process's weight up to date with its nice.
    fn reweigh(&mut self, c: &Candidate) {
        let Some(e) = self.entities.get_mut(&c.pid) else {
            return;
        };
        let w = weight(c.nice);
        if e.weight != w {
            let sum = self.user_weight.entry(e.uid).or_default();
            *sum = sum.saturating_sub(e.weight).saturating_add(w);
            e.weight = w;
        }
    }
}

impl Policy for FairPolicy {
    fn kind(&self) -> PolicyKind {
        PolicyKind::Fair
    }

    /// The negated virtual runtime: the least runs first.
    fn rank(&self, c: &Candidate) -> i64 {
        -(self.vruntime(c.pid).min(i64::MAX as u64) as i64)
    }

    /// How many nice-0 tokens the process is behind (negative) the fairest one.
    fn display_priority(&self, c: &Candidate, _now_ms: u64) -> i32 {
        let ahead = self.vruntime(c.pid).saturating_sub(self.floor) / NICE_0_WEIGHT;
        -(ahead.min(i32::MAX as u64) as i32)
    }

    fn admit(&mut self, c: &Candidate) {
        if self.entities.contains_key(&c.pid) {
            self.reweigh(c);
            return;
        }
        let vruntime = self.advance_floor().saturating_add(self.start_debit);
        let w = weight(c.nice);
        let sum = self.user_weight.entry(c.uid).or_default();
        *sum = sum.saturating_add(w);
        self.entities.insert(
            c.pid,
            Entity {
                vruntime,
                uid: c.uid,
                weight: w,
            },
        );
        self.timeline.insert((vruntime, c.pid));
    }

    fn charge(&mut self, c: &Candidate, tokens: u32, _now_ms: u64) {
        self.admit(c);
        let Some(e) = self.entities.get_mut(&c.pid) else {
            return;
        };
        let user_sum = self.user_weight.get(&e.uid).copied().unwrap_or(e.weight);
        // This process's share of the slots is (1 / users) × weight / user_sum; its clock runs at the
        // inverse. u128: a user with very many heavy processes must not overflow.
        let delta = u128::from(tokens) * u128::from(NICE_0_WEIGHT) * u128::from(user_sum)
            / u128::from(e.weight);
        self.timeline.remove(&(e.vruntime, c.pid));
        e.vruntime = e
            .vruntime
            .saturating_add(delta.min(u128::from(u64::MAX)) as u64);
        self.timeline.insert((e.vruntime, c.pid));
        self.advance_floor();
    }

    fn retire(&mut self, pid: Pid) {
        let Some(e) = self.entities.remove(&pid) else {
            return;
        };
        self.timeline.remove(&(e.vruntime, pid));
        if let Some(sum) = self.user_weight.get_mut(&e.uid) {
            *sum = sum.saturating_sub(e.weight);
            if *sum == 0 {
                self.user_weight.remove(&e.uid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_follow_nice_by_a_quarter_per_step() {
        assert_eq!(weight(0), 1024);
        assert_eq!(weight(1), 819);
        assert_eq!(weight(-1), 1280);
        assert_eq!(weight(5), 336);
        assert!(weight(19) >= 1 && weight(-20) > 80_000);
    }

    fn candidate(pid: u64, uid: u32, nice: i8) -> Candidate {
        Candidate {
            pid: Pid(pid),
            uid,
            base_priority: 1,
            nice,
            enqueued_ms: 0,
            tokens_used: 0,
            interactive: false,
            deadline_ms: None,
        }
    }

    #[test]
    fn a_user_with_more_processes_does_not_get_more_tokens() {
        let mut p = FairPolicy::new(4);
        let alone = candidate(1, 2, 0);
        let crowd: Vec<_> = (10..13).map(|pid| candidate(pid, 1, 0)).collect();
        p.admit(&alone);
        crowd.iter().for_each(|c| p.admit(c));
        let start: Vec<u64> = (1..2)
            .chain(10..13)
            .map(|pid| p.vruntime(Pid(pid)))
            .collect();
        p.charge(&alone, 30, 0);
        for c in &crowd {
            p.charge(c, 10, 0);
        }
        // 30 tokens for the lone user's process, 30 spread over the other user's three: even.
        let grown: Vec<u64> = (1..2)
            .chain(10..13)
            .zip(start)
            .map(|(pid, v)| p.vruntime(Pid(pid)) - v)
            .collect();
        assert_eq!(grown, vec![30 * NICE_0_WEIGHT; 4]);
    }

    #[test]
    fn a_newcomer_starts_a_quantum_behind_the_least_virtual_runtime() {
        let mut p = FairPolicy::new(4);
        let old = candidate(1, 1, 0);
        p.admit(&old);
        p.charge(&old, 100, 0);
        let new = candidate(2, 1, 0);
        p.admit(&new);
        assert_eq!(p.vruntime(new.pid), p.vruntime(old.pid) + 4 * NICE_0_WEIGHT);
        p.retire(old.pid);
        p.retire(new.pid);
        assert!(p.timeline.is_empty() && p.user_weight.is_empty());
    }

    #[test]
    fn extreme_nice_values_and_charges_saturate_instead_of_overflowing() {
        let mut p = FairPolicy::new(u32::MAX);
        let heavy: Vec<_> = (1..5).map(|pid| candidate(pid, 1, i8::MIN)).collect();
        heavy.iter().for_each(|c| p.admit(c));
        let light = candidate(9, 1, i8::MAX);
        p.admit(&light);
        for _ in 0..3 {
            p.charge(&light, u32::MAX, 0);
        }
        assert_eq!(p.vruntime(light.pid), u64::MAX);
        assert!(p.display_priority(&light, 0) <= 0);
        assert!(p.rank(&light) <= p.rank(&heavy[0]));
    }
}
