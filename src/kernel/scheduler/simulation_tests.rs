//! The simulations' cases: defining properties of each policy, preemption, and starvation freedom.

use super::{Rng, Sim};
use crate::config::PolicyKind;
use crate::proto::{Pid, ProcessState, ProcessType};

const HK: ProcessType = ProcessType::Housekeeping;
const USER: ProcessType = ProcessType::User;
const SYSTEM: ProcessType = ProcessType::System;

fn run_until(sim: &mut Sim, limit: usize, done: impl Fn(&Sim) -> bool) -> usize {
    for tick in 0..limit {
        if done(sim) {
            return tick;
        }
        sim.tick();
    }
    panic!("condition not reached in {limit} ticks");
}

#[test]
fn an_uncontended_process_keeps_its_slot_and_its_single_stream_under_every_policy() {
    for policy in PolicyKind::ALL {
        let mut sim = Sim::new(policy, 1, 4);
        let pid = sim.submit(HK, 0, 1, 200);
        run_until(&mut sim, 1000, |s| s.finished(pid));
        assert_eq!(
            sim.launches, 1,
            "{policy}: one request for the whole answer"
        );
        assert_eq!(sim.state.context_switches, 0);
        sim.assert_all_finished_once();
    }
}

#[test]
fn a_user_query_takes_a_slot_from_housekeeping_within_one_quantum() {
    let quantum = 8;
    let mut sim = Sim::new(PolicyKind::Priority, 2, quantum);
    let hk: Vec<Pid> = (0..2).map(|_| sim.submit(HK, 0, 1, 300)).collect();
    for _ in 0..13 {
        sim.tick();
    }
    let before: Vec<usize> = hk.iter().map(|p| sim.tokens_of(*p)).collect();
    let user = sim.submit(USER, 0, 1, 20);
    run_until(&mut sim, 100, |s| s.tokens_of(user) > 0);
    for (pid, at_arrival) in hk.iter().zip(before) {
        assert!(
            sim.tokens_of(*pid) <= at_arrival + quantum as usize + 1,
            "{pid} ran on past its quantum"
        );
    }
    let still_running = hk.iter().filter(|p| sim.running(**p)).count();
    assert_eq!(
        still_running, 1,
        "only one housekeeping process gave up its slot"
    );
    run_until(&mut sim, 2000, |s| hk.iter().all(|p| s.finished(*p)));
    sim.assert_all_finished_once();
    assert!(sim.state.context_switches >= 1);
}

#[test]
fn rr_alternates_by_quantum() {
    let mut sim = Sim::new(PolicyKind::RoundRobin, 1, 4);
    let a = sim.submit(USER, 0, 1, 16);
    let b = sim.submit(HK, 19, 1, 16);
    run_until(&mut sim, 200, |s| s.finished(a) && s.finished(b));
    let turns: Vec<Pid> = sim.trace.chunks(4).map(|c| c[0]).collect();
    assert_eq!(turns, [a, b, a, b, a, b, a, b]);
    assert!(sim.trace.chunks(4).all(|c| c.iter().all(|p| *p == c[0])));
    sim.assert_all_finished_once();
}

#[test]
fn fair_splits_tokens_by_nice_weight() {
    let mut sim = Sim::new(PolicyKind::Fair, 1, 4);
    let heavy = sim.submit(HK, 0, 1, 100_000);
    let light = sim.submit(SYSTEM, 5, 1, 100_000);
    for _ in 0..4000 {
        sim.tick();
    }
    let ratio = sim.tokens_of(heavy) as f64 / sim.tokens_of(light) as f64;
    let want = 1024.0 / 336.0;
    assert!(
        (ratio / want - 1.0).abs() < 0.1,
        "nice 0 : nice 5 got {ratio:.2}, want {want:.2}"
    );
}

#[test]
fn fair_splits_tokens_evenly_across_users_whatever_their_process_count() {
    let mut sim = Sim::new(PolicyKind::Fair, 2, 4);
    let crowd: Vec<Pid> = (0..3).map(|_| sim.submit(USER, 0, 1, 100_000)).collect();
    let alone = sim.submit(USER, 0, 2, 100_000);
    for _ in 0..3000 {
        sim.tick();
    }
    let crowd_tokens: usize = crowd.iter().map(|p| sim.tokens_of(*p)).sum();
    let ratio = sim.tokens_of(alone) as f64 / crowd_tokens as f64;
    assert!((ratio - 1.0).abs() < 0.1, "users got {ratio:.2} : 1");
}

#[test]
fn mlfq_demotes_a_long_runner_below_a_newcomer() {
    let mut sim = Sim::new(PolicyKind::Mlfq, 1, 4);
    sim.align_clock(crate::kernel::scheduler::mlfq::BOOST_PERIOD_MS);
    let long = sim.submit(HK, 0, 1, 400);
    for _ in 0..100 {
        sim.tick();
    }
    let shown = |sim: &Sim, pid| {
        let list = sim.state.list(0, true);
        list.iter().find(|p| p.pid == pid).map(|p| p.priority)
    };
    assert_eq!(shown(&sim, long), Some(0), "sunk to the bottom level");
    let at_arrival = sim.tokens_of(long);
    let short = sim.submit(USER, 0, 1, 3);
    run_until(&mut sim, 100, |s| s.finished(short));
    assert!(sim.tokens_of(long) <= at_arrival + 4);
    run_until(&mut sim, 1000, |s| s.finished(long));
    sim.assert_all_finished_once();
}

#[test]
fn priority_ages_a_starving_process_up_past_a_stream_of_system_work() {
    let mut sim = Sim::new(PolicyKind::Priority, 1, 4);
    // The first SYSTEM process switches it out at once; aged up, it finishes within the quantum it
    // wins (a longer answer would wait out the aging again for each quantum).
    let victim = sim.submit(HK, 19, 1, 3);
    let mut tick = 0;
    while !sim.finished(victim) {
        if tick % 7 == 0 {
            sim.submit(SYSTEM, -20, 1, 8);
        }
        sim.tick();
        tick += 1;
        assert!(tick < 20_000, "the housekeeping process starved");
    }
    // (SYSTEM 100 + 20 − HOUSEKEEPING 20 + 19) points at 2 points/s is about 60 s of waiting.
    let waited_secs = tick as u64 * super::TICK_MS / 1000;
    assert!((55..=70).contains(&waited_secs), "ran after {waited_secs}s");
}

#[test]
fn no_policy_starves_a_process_behind_an_endless_overload() {
    for policy in PolicyKind::ALL {
        let mut sim = Sim::new(policy, 2, 4);
        // Two quanta: it must win its way back after being switched out, too.
        let victim = sim.submit(HK, 19, 1, 8);
        let mut tick = 0;
        while !sim.finished(victim) {
            if tick % 3 == 0 {
                sim.submit(SYSTEM, -20, 2, 8); // more work than two slots can do
            }
            sim.tick();
            tick += 1;
            assert!(tick < 50_000, "{policy}: the housekeeping process starved");
        }
    }
}

#[test]
fn stop_frees_the_slot_at_once_and_cont_takes_one_again() {
    let mut sim = Sim::new(PolicyKind::Priority, 1, 8);
    let a = sim.submit(USER, 0, 1, 50);
    let b = sim.submit(HK, 0, 1, 50);
    for _ in 0..3 {
        sim.tick();
    }
    sim.state.stop(a);
    sim.cancel_ended_runs();
    assert_eq!(
        sim.state.get(a).map(|p| p.state()),
        Some(ProcessState::Stopped)
    );
    assert!(
        sim.running(b),
        "the stopped process's slot went to the next one"
    );
    let kept = sim.state.get(a).map(|p| p.output().to_string());
    assert_eq!(kept.as_deref(), Some("t0 t1 t2 "));
    sim.state.resume(a);
    sim.dispatch();
    run_until(&mut sim, 20, |s| s.running(a));
    run_until(&mut sim, 500, |s| s.finished(a) && s.finished(b));
    sim.assert_all_finished_once();
}

#[test]
fn cont_before_the_stopped_run_lets_go_queues_once_the_slot_is_free() {
    let mut sim = Sim::new(PolicyKind::Priority, 2, 4);
    let a = sim.submit(USER, 0, 1, 30);
    sim.tick();
    sim.state.stop(a);
    sim.state.resume(a);
    sim.state.renice(a, 3);
    sim.dispatch(); // must not start a second run while the first still holds the slot
    assert_eq!(sim.state.waiting(), 0);
    sim.cancel_ended_runs();
    assert!(
        sim.running(a),
        "queued and dispatched once the slot was free"
    );
    run_until(&mut sim, 100, |s| s.finished(a));
    sim.assert_all_finished_once();
}

#[test]
fn renice_reorders_the_queue_and_reaches_a_running_process_at_its_boundary() {
    let mut sim = Sim::new(PolicyKind::Priority, 1, 4);
    let running = sim.submit(ProcessType::LlmInitiated, 0, 1, 100);
    let first = sim.submit(HK, 0, 1, 10);
    let second = sim.submit(HK, 5, 1, 10);
    let order = |sim: &Sim| sim.state.scheduler().queue_order().collect::<Vec<_>>();
    assert_eq!(order(&sim), [first, second]);
    sim.state.renice(second, -5);
    assert_eq!(order(&sim), [second, first]);
    sim.state.renice(running, 19);
    let at_renice = sim.tokens_of(running);
    run_until(&mut sim, 20, |s| s.running(second));
    assert!(sim.tokens_of(running) <= at_renice + 4);
}

#[test]
fn switching_policy_keeps_every_process_and_applies_at_once() {
    let mut sim = Sim::new(PolicyKind::Priority, 1, 4);
    let running = sim.submit(SYSTEM, 0, 1, 60);
    let waiting = sim.submit(HK, 0, 1, 10);
    for _ in 0..9 {
        sim.tick();
    }
    assert!(!sim.running(waiting), "priority keeps SYSTEM on the slot");
    let config = sim.state.config.clone();
    let rr = crate::kernel::make_policy(PolicyKind::RoundRobin, &config);
    sim.state.set_policy(rr);
    assert_eq!(sim.state.scheduler().policy_name(), "rr");
    run_until(&mut sim, 10, |s| s.running(waiting));
    run_until(&mut sim, 500, |s| {
        s.finished(running) && s.finished(waiting)
    });
    sim.assert_all_finished_once();
}

/// One random scenario: arrivals, STOP/CONT, renice and a policy switch, run to completion.
fn random_scenario(seed: u64, policy: PolicyKind) {
    let mut rng = Rng(seed);
    let cpus = 1 + rng.below(3) as u32;
    let quantum = 1 + rng.below(8) as u32;
    let mut sim = Sim::new(policy, cpus, quantum);
    let types = ProcessType::ALL;
    let arrivals: Vec<(u64, ProcessType, i8, u32, usize)> = (0..1 + rng.below(25))
        .map(|_| {
            let t = types[rng.below(5) as usize];
            let nice = rng.below(40) as i8 - 20;
            (
                rng.below(300),
                t,
                nice,
                rng.below(3) as u32,
                1 + rng.below(60) as usize,
            )
        })
        .collect();
    let mut pids = Vec::new();
    let mut stopped: Vec<Pid> = Vec::new();
    for tick in 0..100_000u64 {
        for (at, t, nice, uid, len) in &arrivals {
            if *at == tick {
                pids.push(sim.submit(*t, *nice, *uid, *len));
            }
        }
        if !pids.is_empty() && rng.below(40) == 0 {
            let pid = pids[rng.below(pids.len() as u64) as usize];
            match rng.below(3) {
                0 if sim
                    .state
                    .get(pid)
                    .is_some_and(|p| p.state() != ProcessState::Zombie) =>
                {
                    sim.state.stop(pid);
                    stopped.push(pid);
                    sim.cancel_ended_runs();
                }
                1 => {
                    sim.state.renice(pid, rng.below(40) as i8 - 20);
                }
                _ => {
                    if let Some(pid) = stopped.pop() {
                        sim.state.resume(pid);
                        sim.dispatch();
                    }
                }
            }
        }
        let all_arrived = pids.len() == arrivals.len();
        if all_arrived && stopped.is_empty() && pids.iter().all(|p| sim.finished(*p)) {
            sim.assert_all_finished_once();
            return;
        }
        if all_arrived && !stopped.is_empty() && rng.below(10) == 0 {
            let pid = stopped.remove(0);
            sim.state.resume(pid);
            sim.dispatch();
        }
        sim.tick();
    }
    panic!("seed {seed}, {policy}: not every process finished");
}

#[test]
fn every_process_finishes_exactly_once_over_random_arrival_sequences() {
    for policy in PolicyKind::ALL {
        for seed in 0..60 {
            random_scenario(seed * 7919 + 1, policy);
        }
    }
}
