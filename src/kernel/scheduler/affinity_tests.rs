//! Cache affinity on the simulated clock: a new process takes the free slot whose cache begins like
//! its conversation, and leaves alone a slot whose cache a stopped process will resume from.

use super::Sim;
use crate::config::{KernelConfig, PolicyKind};
use crate::proto::ProcessType;

const HK: ProcessType = ProcessType::Housekeeping;

fn no_reservation(c: &mut KernelConfig) {
    c.scheduler.reserved_slots = Some(0);
}

fn run_until(sim: &mut Sim, done: impl Fn(&Sim) -> bool) {
    for _ in 0..10_000 {
        if done(sim) {
            return;
        }
        sim.tick();
    }
    panic!("condition not reached");
}

#[test]
fn a_new_process_takes_the_free_slot_whose_cache_begins_like_its_prompt() {
    let mut sim = Sim::configured(PolicyKind::Priority, 3, 8, no_reservation);
    let prompts = [
        "Summarise the history of bread.",
        "Write an essay about rivers.",
        "Translate this note into French.",
    ];
    let first: Vec<_> = prompts
        .iter()
        .map(|p| sim.submit_prompt(HK, p, 3))
        .collect();
    run_until(&mut sim, |s| first.iter().all(|p| s.finished(*p)));
    let slot_of = |sim: &Sim, pid| sim.slots_of[&pid][0];
    let rivers = slot_of(&sim, first[1]);
    assert_ne!(rivers, 0, "the essay did not run on the lowest slot");
    let again = sim.submit_prompt(HK, "Write an essay about rivers and lakes.", 3);
    assert_eq!(
        slot_of(&sim, again),
        rivers,
        "every slot is free; the one that read the essay's beginning is taken"
    );
    run_until(&mut sim, |s| s.finished(again));
    sim.assert_all_finished_once();
}

#[test]
fn a_new_process_leaves_alone_the_slot_a_stopped_process_will_resume_from() {
    let mut sim = Sim::configured(PolicyKind::Priority, 2, 8, no_reservation);
    let stopped = sim.submit_prompt(HK, "a long story", 200);
    let short = sim.submit_prompt(HK, "a short note", 3);
    let home = sim.slots_of[&stopped][0];
    run_until(&mut sim, |s| s.finished(short) && s.tokens_of(stopped) > 10);
    let _ = sim.state.stop(stopped);
    sim.cancel_ended_runs();
    let newcomer = sim.submit_prompt(HK, "another job", 3);
    assert_ne!(
        sim.slots_of[&newcomer][0], home,
        "the newcomer took the slot whose cache the stopped story needs"
    );
    let _ = sim.state.resume(stopped);
    sim.dispatch();
    run_until(&mut sim, |s| s.finished(stopped) && s.finished(newcomer));
    assert_eq!(sim.slots_of[&stopped], [home, home], "it resumed at home");
    sim.assert_all_finished_once();
}
