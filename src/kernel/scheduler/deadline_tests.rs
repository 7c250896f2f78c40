//! The simulations' deadline cases: a feasible mixed load whose every deadline `edf` meets and
//! `priority` order misses, deadlines breaking ties under every policy, and what happens to a process
//! at its deadline (hard: SIGXCPU with its output kept; soft: it goes on).

use super::{Sim, TICK_MS, answer};
use crate::config::PolicyKind;
use crate::kernel::process::Ask;
use crate::proto::{Deadline, ExitStatus, Pid, ProcessState, ProcessType, Signal};

const HK: ProcessType = ProcessType::Housekeeping;
const USER: ProcessType = ProcessType::User;

/// One arrival of a load: at which tick, of which type, how many tokens, within how many ms.
struct Arrival {
    tick: usize,
    process_type: ProcessType,
    length: usize,
    within_ms: u64,
}

/// A mixed load for one slot: a long USER answer, short urgent questions arriving while it runs, and
/// a background job. 180 tokens of work, every deadline reachable in the earliest-deadline order.
fn mixed_load() -> Vec<Arrival> {
    let a = |tick, process_type, length, within_ms| Arrival {
        tick,
        process_type,
        length,
        within_ms,
    };
    vec![
        a(0, USER, 100, 3000),
        a(5, USER, 20, 300),
        a(10, USER, 30, 1000),
        a(12, HK, 20, 5000),
        a(20, USER, 10, 600),
    ]
}

fn with_deadline(within_ms: u64, soft: bool) -> Ask {
    Ask {
        deadline: Some(Deadline { within_ms, soft }),
        ..Ask::default()
    }
}

/// Runs `load` under `policy` on `cpus` slots to its end; the pids in arrival order.
fn run_load(policy: PolicyKind, cpus: u32, load: &[Arrival]) -> (Sim, Vec<Pid>) {
    let mut sim = Sim::new(policy, cpus, 4);
    let mut pids = Vec::new();
    for tick in 0..100_000 {
        for arrival in load.iter().filter(|a| a.tick == tick) {
            let ask = with_deadline(arrival.within_ms, false);
            pids.push(sim.submit_asked(arrival.process_type, 0, 1, arrival.length, ask));
        }
        let all_ended = pids.len() == load.len()
            && pids
                .iter()
                .all(|p| sim.state.get(*p).is_some_and(|p| p.exit().is_some()));
        if all_ended {
            return (sim, pids);
        }
        sim.tick();
    }
    panic!("{policy}: the load did not end");
}

/// The processes of a run that ended at their deadline.
fn missed(sim: &Sim, pids: &[Pid]) -> Vec<Pid> {
    let xcpu = ExitStatus::Killed {
        signal: Signal::Xcpu,
    };
    pids.iter()
        .copied()
        .filter(|p| sim.state.get(*p).and_then(|p| p.exit()) == Some(&xcpu))
        .collect()
}

#[test]
fn edf_meets_every_deadline_of_a_feasible_mixed_load_that_priority_order_misses() {
    let load = mixed_load();
    let (edf, pids) = run_load(PolicyKind::Edf, 1, &load);
    assert_eq!(missed(&edf, &pids), [], "edf met every deadline");
    for (pid, arrival) in pids.iter().zip(&load) {
        let p = edf.state.get(*pid).expect("zombies stay");
        assert_eq!(p.output(), answer(arrival.length), "{pid}'s whole answer");
    }
    let (priority, pids) = run_load(PolicyKind::Priority, 1, &load);
    let late = missed(&priority, &pids);
    assert!(
        late.contains(&pids[1]),
        "priority order let the urgent question miss: {late:?}"
    );
}

#[test]
fn every_policy_breaks_a_tie_by_the_earliest_deadline() {
    for policy in PolicyKind::ALL {
        let mut sim = Sim::new(policy, 1, 4);
        let busy = sim.submit(USER, 0, 1, 8);
        // Entered at the same moment, of the same type: only the deadline tells them apart.
        let late = sim.submit_asked(USER, 0, 1, 4, with_deadline(60_000, false));
        let soon = sim.submit_asked(USER, 0, 1, 4, with_deadline(30_000, false));
        let order: Vec<Pid> = sim.state.scheduler().queue_order().collect();
        assert_eq!(order, [soon, late], "{policy}: queue order");
        let _ = busy;
    }
}

#[test]
fn a_process_running_at_its_hard_deadline_ends_with_sigxcpu_and_keeps_its_output() {
    let mut sim = Sim::new(PolicyKind::Priority, 1, 4);
    let pid = sim.submit_asked(USER, 0, 1, 1000, with_deadline(20 * TICK_MS, false));
    for _ in 0..25 {
        sim.tick();
    }
    let p = sim.state.get(pid).expect("a zombie");
    assert_eq!(p.state(), ProcessState::Zombie);
    let status = p.exit().expect("ended");
    assert_eq!(status.code(), 152);
    let note = p.note_at(0).unwrap_or_default();
    assert!(note.contains("deadline of 0.2s passed"), "{note}");
    let kept = p.output().split_inclusive(' ').count();
    assert!((19..=21).contains(&kept), "{kept} tokens kept");
    assert_eq!(p.output(), answer(kept), "the output so far, unbroken");
    assert!(!sim.running(pid), "its slot is free");
}

#[test]
fn a_soft_deadline_passes_and_the_process_goes_on_without_its_urgency() {
    let mut sim = Sim::new(PolicyKind::Edf, 1, 4);
    let busy = sim.submit(USER, 0, 1, 40);
    let soft = sim.submit_asked(USER, 0, 1, 8, with_deadline(5 * TICK_MS, true));
    let plain = sim.submit(USER, 0, 1, 8);
    let shown = |sim: &Sim, pid| {
        let rows = sim.state.list(0, true);
        rows.into_iter().find(|r| r.pid == pid).and_then(|r| r.note)
    };
    assert_eq!(shown(&sim, soft).as_deref(), Some("soft deadline in 0.1s"));
    // The soft deadline takes the slot at the first boundary, then passes while it runs.
    for _ in 0..10 {
        sim.tick();
    }
    let note = shown(&sim, soft).unwrap_or_default();
    assert!(note.starts_with("soft deadline passed"), "{note}");
    for _ in 0..200 {
        sim.tick();
    }
    assert!(sim.finished(soft) && sim.finished(plain) && sim.finished(busy));
    sim.assert_all_finished_once();
}
