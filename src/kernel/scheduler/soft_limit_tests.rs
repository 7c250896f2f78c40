//! The simulations' soft-limit cases: past its threshold a process is told to wrap up at the next
//! quantum boundary, its next run carries the note before the answer so far, and the answer stays
//! one unbroken text; a type with the soft limit off is never told.

use super::Sim;
use crate::config::PolicyKind;
use crate::config::soft_limit::SoftLimitConfig;
use crate::kernel::state::soft_limit::run_messages;
use crate::proto::{ProcessType, Role};

fn with_soft_limit() -> Sim {
    Sim::configured(PolicyKind::Priority, 1, 4, |c| {
        // The simulation's allowance is 100,000 tokens: told after 20.
        c.soft_limit = SoftLimitConfig {
            fraction: Some(0.0002),
            types_off: vec![ProcessType::Housekeeping],
        };
    })
}

#[test]
fn past_its_soft_limit_a_process_continues_with_a_note_and_one_unbroken_answer() {
    let mut sim = with_soft_limit();
    let pid = sim.submit(ProcessType::User, 0, 1, 40);
    for _ in 0..22 {
        sim.tick();
    }
    let p = sim.state.get(pid).expect("alive");
    let messages = run_messages(p);
    let note = &messages[messages.len() - 2];
    assert_eq!(note.role, Role::System);
    assert!(
        note.content.starts_with("You have 999") && note.content.contains("tokens left"),
        "{}",
        note.content
    );
    assert_eq!(messages.last().map(|m| m.role), Some(Role::Assistant));
    for _ in 0..100 {
        sim.tick();
    }
    assert_eq!(
        sim.launches, 2,
        "one cut, at the boundary past the threshold"
    );
    sim.assert_all_finished_once();
    let rows = sim.state.list(0, true);
    let shown = rows
        .iter()
        .find(|r| r.pid == pid)
        .and_then(|r| r.note.clone());
    assert_eq!(
        shown.as_deref(),
        Some("told to wrap up at 20 of 100000 tokens")
    );
}

#[test]
fn a_type_with_the_soft_limit_off_is_never_told() {
    let mut sim = with_soft_limit();
    let pid = sim.submit(ProcessType::Housekeeping, 0, 1, 40);
    for _ in 0..100 {
        sim.tick();
    }
    assert_eq!(sim.launches, 1);
    assert!(sim.finished(pid));
    let p = sim.state.get(pid).expect("a zombie");
    assert!(run_messages(p).iter().all(|m| m.role != Role::System));
}
