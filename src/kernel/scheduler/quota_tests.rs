//! The simulations' quota cases: a user over quota waits (STAT Q, with a note saying how much is
//! left and when it renews) instead of failing, and goes on when the window renews; under `fair`,
//! the users within their quotas share the slots.

use super::Sim;
use crate::config::PolicyKind;
use crate::config::quotas::{QuotaLimit, QuotaSubject};
use crate::proto::{Pid, ProcessState, ProcessType};

const USER: ProcessType = ProcessType::User;
const MINUTE_MS: u64 = 60_000;

fn with_quota(policy: PolicyKind, tokens: u64) -> Sim {
    let mut sim = Sim::configured(policy, 1, 4, |c| {
        let limit = QuotaLimit {
            tokens,
            window_ms: MINUTE_MS,
        };
        c.quotas.limits.insert(QuotaSubject::User(1), limit);
    });
    sim.align_clock(MINUTE_MS);
    sim
}

fn note(sim: &Sim, pid: Pid) -> Option<String> {
    let rows = sim.state.list(0, true);
    rows.into_iter().find(|r| r.pid == pid).and_then(|r| r.note)
}

#[test]
fn a_user_over_quota_waits_with_a_note_and_goes_on_when_the_window_renews() {
    for policy in PolicyKind::ALL {
        let mut sim = with_quota(policy, 40);
        let capped = sim.submit(USER, 0, 1, 70);
        let other = sim.submit(USER, 0, 2, 30);
        for _ in 0..300 {
            sim.tick();
        }
        assert!(sim.finished(other), "{policy}: the other user is not held");
        let p = sim.state.get(capped).expect("still there");
        assert_eq!(
            p.state(),
            ProcessState::Waiting,
            "{policy}: waits, not failed"
        );
        let used = sim.tokens_of(capped);
        assert!(
            (40..44).contains(&used),
            "{policy}: stopped within a quantum of the quota: {used}"
        );
        let shown = note(&sim, capped).unwrap_or_default();
        assert!(
            shown.starts_with("quota: 0 of 40/minute left in 5") && shown.ends_with('s'),
            "{policy}: {shown}"
        );
        // The next minute renews the quota.
        sim.align_clock(MINUTE_MS);
        sim.dispatch();
        for _ in 0..300 {
            sim.tick();
        }
        assert!(sim.finished(capped), "{policy}: finished once renewed");
        sim.assert_all_finished_once();
    }
}

#[test]
fn fair_shares_the_slot_among_the_users_within_their_quotas() {
    let mut sim = with_quota(PolicyKind::Fair, 20);
    let capped = sim.submit(USER, 0, 1, 10_000);
    let a = sim.submit(USER, 0, 2, 10_000);
    let b = sim.submit(USER, 0, 3, 10_000);
    for _ in 0..2000 {
        sim.tick();
    }
    assert!(sim.tokens_of(capped) < 24, "held at its quota");
    let ratio = sim.tokens_of(a) as f64 / sim.tokens_of(b) as f64;
    assert!(
        (ratio - 1.0).abs() < 0.1,
        "the other two users split evenly: {ratio:.2}"
    );
}
