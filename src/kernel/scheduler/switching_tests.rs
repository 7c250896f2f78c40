//! The switching rules on the simulated clock: more urgent work switches out exactly one process at
//! once, the cheapest; one arrival never makes more than one switch and slots are never traded; a
//! resumed process keeps its slot for its guard; equals displace each other only by the margin; and
//! slots are kept for interactive work while it comes, then given back.

use super::Sim;
use crate::config::{KernelConfig, PolicyKind};
use crate::proto::{Pid, ProcessType};
use std::time::Duration;

const HK: ProcessType = ProcessType::Housekeeping;
const USER: ProcessType = ProcessType::User;

fn run_until(sim: &mut Sim, limit: usize, done: impl Fn(&Sim) -> bool) -> usize {
    for tick in 0..limit {
        if done(sim) {
            return tick;
        }
        sim.tick();
    }
    panic!("condition not reached in {limit} ticks");
}

fn no_reservation(c: &mut KernelConfig) {
    c.scheduler.reserved_slots = Some(0);
}

/// `cpus` housekeeping processes filling every slot, a few tokens into a quantum.
fn full_slots(sim: &mut Sim, cpus: u32, length: usize) -> Vec<Pid> {
    let hk: Vec<Pid> = (0..cpus).map(|_| sim.submit(HK, 0, 1, length)).collect();
    for _ in 0..11 {
        sim.tick();
    }
    hk
}

#[test]
fn a_user_arrival_into_full_slots_switches_out_exactly_one_process_at_once() {
    for reserve in [false, true] {
        let mut sim = Sim::configured(PolicyKind::Priority, 4, 8, |c| {
            if !reserve {
                no_reservation(c);
            }
        });
        let hk = full_slots(&mut sim, 4, 300);
        let before: Vec<usize> = hk.iter().map(|p| sim.tokens_of(*p)).collect();
        let user = sim.submit(USER, 0, 1, 20);
        // The victim's run is cancelled now; its task lets go of the slot (no token in between).
        sim.cancel_ended_runs();
        assert!(
            sim.running(user),
            "the query started without waiting a quantum"
        );
        let switched: Vec<Pid> = hk.iter().copied().filter(|p| !sim.running(*p)).collect();
        assert_eq!(switched.len(), 1, "exactly one process switched out");
        let victim = switched[0];
        let kept = sim.state.get(victim).map(|p| p.output().to_string());
        let at_arrival = before[hk.iter().position(|p| *p == victim).unwrap_or(0)];
        assert_eq!(kept, Some(super::answer(at_arrival)), "every token kept");
        run_until(&mut sim, 5000, |s| hk.iter().all(|p| s.finished(*p)));
        sim.assert_all_finished_once();
        let counters = sim.state.switch_counters();
        assert_eq!(
            (counters.switches, counters.urgent),
            (1, 1),
            "one arrival, one switch (reservation {reserve})"
        );
        assert_eq!(sim.slots_of[&victim].len(), 2);
        assert_eq!(
            sim.slots_of[&victim][0], sim.slots_of[&victim][1],
            "resumed on its own slot"
        );
        assert_eq!(counters.resumes_measured, 1);
        assert!(counters.reread_prompt_tokens >= at_arrival as u64);
    }
}

#[test]
fn a_long_answer_does_not_make_the_switched_out_process_trade_slots_with_its_equals() {
    // The query lasts many quanta: longer than the margin, so aging alone would let the switched-out
    // process take another's slot, and that one the first slot back.
    let mut sim = Sim::configured(PolicyKind::Priority, 2, 4, no_reservation);
    let hk = full_slots(&mut sim, 2, 200);
    let user = sim.submit(USER, 0, 1, 80);
    run_until(&mut sim, 1000, |s| s.finished(user));
    run_until(&mut sim, 2000, |s| hk.iter().all(|p| s.finished(*p)));
    sim.assert_all_finished_once();
    assert_eq!(sim.state.switch_counters().switches, 1, "one switch in all");
    for pid in &hk {
        let slots = &sim.slots_of[pid];
        assert!(
            slots.iter().all(|s| *s == slots[0]),
            "{pid} ran on slots {slots:?}"
        );
    }
}

#[test]
fn the_cheapest_process_to_switch_out_is_the_one_with_the_shortest_conversation() {
    let mut sim = Sim::configured(PolicyKind::Priority, 2, 8, no_reservation);
    let long = sim.submit(HK, 0, 1, 1000);
    for _ in 0..100 {
        sim.tick();
    }
    let short = sim.submit(HK, 0, 1, 1000);
    for _ in 0..3 {
        sim.tick();
    }
    sim.submit(USER, 0, 1, 10);
    sim.cancel_ended_runs();
    assert!(sim.running(long), "the long conversation kept its slot");
    assert!(!sim.running(short), "the short one was switched out");
}

#[test]
fn a_resumed_process_keeps_its_slot_for_its_guard_except_against_more_urgent_work() {
    let guarded = |guard: u32| {
        let mut sim = Sim::configured(PolicyKind::Priority, 1, 4, |c| {
            no_reservation(c);
            c.scheduler.switch_guard_quanta = guard;
            c.scheduler.switch_margin_quanta = 0;
        });
        let a = sim.submit(HK, 0, 1, 60);
        let b = sim.submit(HK, 0, 1, 60);
        run_until(&mut sim, 500, |s| s.finished(a) && s.finished(b));
        sim.assert_all_finished_once();
        // Stints: runs of one process's tokens in the trace.
        let mut stints: Vec<usize> = Vec::new();
        for (i, pid) in sim.trace.iter().enumerate() {
            match i.checked_sub(1).map(|j| sim.trace[j] == *pid) {
                Some(true) => *stints.last_mut().unwrap_or(&mut 0) += 1,
                _ => stints.push(1),
            }
        }
        stints
    };
    let unguarded = guarded(0);
    assert!(unguarded.iter().all(|s| *s == 4), "{unguarded:?}");
    let stints = guarded(2);
    let (first, resumed) = stints.split_at(2);
    assert_eq!(first, [4, 4], "first runs take turns by quantum");
    let last = resumed.len() - 1;
    assert!(
        resumed[..last].iter().all(|s| *s >= 8),
        "resumed stints last the guard: {stints:?}"
    );

    // More urgent work does not wait for the guard.
    let mut sim = Sim::configured(PolicyKind::Priority, 1, 4, no_reservation);
    let a = sim.submit(HK, 0, 1, 60);
    let b = sim.submit(HK, 0, 1, 60);
    run_until(&mut sim, 100, |s| s.running(a) && s.tokens_of(b) > 0);
    let user = sim.submit(USER, 0, 1, 5);
    sim.cancel_ended_runs();
    assert!(sim.running(user));
}

#[test]
fn an_equal_displaces_a_running_process_only_after_waiting_the_margin() {
    let first_stint = |margin: u32| {
        let mut sim = Sim::configured(PolicyKind::Priority, 1, 4, |c| {
            no_reservation(c);
            c.scheduler.switch_margin_quanta = margin;
        });
        let a = sim.submit(HK, 0, 1, 100);
        sim.tick();
        let b = sim.submit(HK, 0, 1, 100);
        run_until(&mut sim, 500, |s| s.running(b));
        sim.tokens_of(a)
    };
    assert_eq!(
        first_stint(0),
        4,
        "without a margin, aging switches at once"
    );
    let with_margin = first_stint(2);
    assert!(
        (9..=12).contains(&with_margin),
        "ran {with_margin} tokens: more than two quanta of waiting"
    );
}

#[test]
fn a_long_conversation_takes_turns_with_an_equal_only_after_running_half_what_it_costs_to_resume() {
    // One slot, quanta of 4 tokens, the default margin of two quanta: 8 tokens.
    let mut sim = Sim::configured(PolicyKind::Priority, 1, 4, no_reservation);
    let long = sim.submit(HK, 0, 1, 400);
    run_until(&mut sim, 1000, |s| s.tokens_of(long) >= 100);
    let equal = sim.submit(HK, 0, 1, 400);
    run_until(&mut sim, 5000, |s| s.running(equal));
    // Switching it out costs its whole conversation (over 100 tokens) read again, so it keeps
    // its slot well past the margin: until the equal has waited about half the run.
    let ran = sim.tokens_of(long);
    assert!(ran >= 200, "switched out after {ran} tokens");
    run_until(&mut sim, 10_000, |s| s.finished(long) && s.finished(equal));
    sim.assert_all_finished_once();
}

#[test]
fn slots_are_kept_for_interactive_work_while_it_comes_and_given_back_after() {
    let window = Duration::from_secs(1);
    let mut sim = Sim::configured(PolicyKind::Priority, 2, 4, |c| {
        c.scheduler.reservation_window = window;
    });
    assert_eq!(sim.state.reservation(), (1, false));
    let hk = full_slots(&mut sim, 2, 2000);
    assert!(
        hk.iter().all(|p| sim.running(*p)),
        "no reservation yet: every slot"
    );
    let first = sim.submit(USER, 0, 1, 10);
    sim.cancel_ended_runs();
    assert!(sim.running(first));
    assert_eq!(sim.state.reservation(), (1, true));
    run_until(&mut sim, 100, |s| s.finished(first));
    for _ in 0..20 {
        sim.tick();
        let background = hk.iter().filter(|p| sim.running(**p)).count();
        assert_eq!(background, 1, "the slot stays kept for interactive work");
    }
    let second = sim.submit(USER, 0, 1, 10);
    assert!(sim.running(second), "the next query finds its slot free");
    run_until(&mut sim, 100, |s| s.finished(second));
    assert_eq!(
        sim.state.switch_counters().switches,
        1,
        "only the first switched"
    );
    let since_last = run_until(&mut sim, 1000, |s| hk.iter().all(|p| s.running(*p)));
    let waited_ms = since_last as u64 * super::TICK_MS;
    assert!(
        waited_ms >= window.as_millis() as u64 - 2 * super::TICK_MS,
        "background work got the slot back after {waited_ms} ms"
    );
    assert_eq!(sim.state.reservation(), (1, false));
    assert_eq!(sim.state.switch_counters().switches, 1);
}

#[test]
fn the_peers_workload_gets_every_question_a_slot_at_once_with_at_most_one_switch_each() {
    // Issue 14's comparison on the simulated clock: 4 slots, quantum 8, 4 background streams of 384
    // tokens, 12 questions one a second.
    let mut sim = Sim::new(PolicyKind::Priority, 4, 8);
    let bulk: Vec<Pid> = (0..4).map(|_| sim.submit(HK, 0, 1, 384)).collect();
    let ticks_per_second = (1000 / super::TICK_MS) as usize;
    let mut questions = Vec::new();
    let mut waits = Vec::new();
    for _ in 0..12 {
        for _ in 0..ticks_per_second {
            sim.tick();
        }
        let q = sim.submit(USER, 0, 1, 30);
        sim.cancel_ended_runs();
        waits.push(run_until(&mut sim, 100, |s| s.tokens_of(q) > 0));
        questions.push(q);
    }
    let all: Vec<Pid> = bulk.iter().chain(&questions).copied().collect();
    run_until(&mut sim, 100_000, |s| all.iter().all(|p| s.finished(*p)));
    sim.assert_all_finished_once();
    assert!(
        waits.iter().all(|w| *w <= 1),
        "a question waited for its first token: {waits:?} ticks"
    );
    let switches = sim.state.switch_counters().switches;
    assert_eq!(
        switches, 1,
        "only the first question switched a process out; the kept slot served the rest"
    );
}

/// An mlfq simulation at the start of a boost period, so none comes within the test.
fn mlfq_at_period_start() -> Sim {
    let mut sim = Sim::new(PolicyKind::Mlfq, 1, 4);
    sim.align_clock(crate::kernel::scheduler::mlfq::BOOST_PERIOD_MS);
    sim
}

#[test]
fn under_mlfq_a_newcomer_switches_out_a_sunken_process_at_once_but_not_an_equal() {
    let mut sim = mlfq_at_period_start();
    let long = sim.submit(HK, 0, 1, 400);
    for _ in 0..100 {
        sim.tick();
    }
    let short = sim.submit(HK, 0, 1, 3);
    sim.cancel_ended_runs();
    assert!(sim.running(short), "the top level came first at once");
    run_until(&mut sim, 1000, |s| s.finished(long) && s.finished(short));
    sim.assert_all_finished_once();
    assert_eq!(sim.state.switch_counters().urgent, 1);

    // Two newcomers at the top level: the second waits for the first's quantum.
    let mut sim = mlfq_at_period_start();
    let first = sim.submit(HK, 0, 1, 40);
    sim.tick();
    let second = sim.submit(HK, 0, 1, 40);
    sim.cancel_ended_runs();
    assert!(sim.running(first) && !sim.running(second));
}

#[test]
fn more_urgent_background_work_switches_out_less_urgent_background_work_within_the_reservation() {
    let mut sim = Sim::new(PolicyKind::Priority, 1, 4);
    let hk = sim.submit(HK, 0, 1, 100);
    sim.tick();
    let llm = sim.submit(ProcessType::LlmInitiated, 0, 1, 10);
    sim.cancel_ended_runs();
    assert!(
        sim.running(llm) && !sim.running(hk),
        "one slot: switched at once"
    );

    // Two slots, one kept for interactive work: the background work swaps on the other.
    let mut sim = Sim::new(PolicyKind::Priority, 2, 4);
    let user = sim.submit(USER, 0, 1, 5);
    let hk = sim.submit(HK, 0, 1, 100);
    run_until(&mut sim, 50, |s| s.finished(user));
    sim.tick();
    assert_eq!(sim.state.reservation(), (1, true));
    let llm = sim.submit(ProcessType::LlmInitiated, 0, 1, 10);
    sim.cancel_ended_runs();
    assert!(sim.running(llm) && !sim.running(hk));
    assert_eq!(sim.state.running(), 1, "the kept slot stayed free");
}

#[test]
fn background_work_does_not_take_turns_among_itself_while_questions_come() {
    let window = Duration::from_secs(1);
    let mut sim = Sim::configured(PolicyKind::Priority, 2, 4, |c| {
        c.scheduler.reservation_window = window;
    });
    let question = sim.submit(USER, 0, 1, 5);
    let first = sim.submit(HK, 0, 1, 200);
    sim.tick();
    let second = sim.submit(HK, 0, 1, 2000);
    assert!(sim.running(first) && !sim.running(second));
    run_until(&mut sim, 100, |s| s.finished(question));
    // A question every half window keeps interactive work about: the first runs to its end.
    let half_window = (window.as_millis() as u64 / super::TICK_MS / 2) as usize;
    while !sim.finished(first) {
        assert!(!sim.running(second), "an equal took the first's slot");
        sim.submit(USER, 0, 1, 5);
        for _ in 0..half_window {
            sim.tick();
        }
    }
    assert_eq!(sim.state.switch_counters().switches, 0);
    run_until(&mut sim, 100, |s| s.running(second));
    // No more questions: once the window passes, equals take turns again.
    let third = sim.submit(HK, 0, 1, 2000);
    run_until(&mut sim, 100_000, |s| s.running(third));
    assert!(
        !sim.finished(second),
        "the third waited for the second to end"
    );
    run_until(&mut sim, 100_000, |s| {
        s.finished(second) && s.finished(third)
    });
    sim.assert_all_finished_once();
}
