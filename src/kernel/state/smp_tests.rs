//! Several backends driven by hand: placement by model, affinity and migration, a failing backend's
//! work moving on, a removed backend draining, and one-model-at-a-time servers grouping work.

use super::{KernelState, Launch, RunOutcome};
use crate::config::KernelConfig;
use crate::config::backends::BackendSpec;
use crate::kernel::backends::Discovered;
use crate::kernel::make_policy;
use crate::kernel::process::{Ask, Spec};
use crate::kernel::scheduler::Scheduler;
use crate::llm::BackendError;
use crate::proto::{Pid, ProcessType};

fn spec(name: &str, swap: bool) -> BackendSpec {
    BackendSpec {
        name: name.into(),
        url: format!("http://{name}.test/v1"),
        kind: Default::default(),
        slots: None,
        models: Vec::new(),
        command: None,
        swap,
    }
}

/// A state over backends given as (name, slots, models, swap).
fn state(backends: &[(&str, u32, &[&str], bool)]) -> KernelState {
    let config = KernelConfig {
        quantum_tokens: 4,
        ..KernelConfig::default()
    };
    let policy = make_policy(crate::config::PolicyKind::RoundRobin, &config);
    let mut s = KernelState::new(config, Scheduler::new(policy));
    let found: Vec<_> = backends
        .iter()
        .map(|(name, slots, models, swap)| {
            let models = models.iter().map(|m| m.to_string()).collect();
            (
                spec(name, *swap),
                Discovered {
                    slots: *slots,
                    models,
                },
            )
        })
        .collect();
    s.set_backends(&found);
    s
}

fn create(s: &mut KernelState, model: Option<&str>) -> Pid {
    let spec = Spec {
        uid: 1000,
        process_type: ProcessType::User,
        system: None,
        prompt: "hello".into(),
        allowance: 100,
    };
    let ask = Ask {
        model: model.map(String::from),
        ..Ask::default()
    };
    s.create_asked(spec, ask, 0).0
}

fn backend_of(launches: &[Launch], pid: Pid) -> Option<usize> {
    launches.iter().find(|l| l.pid == pid).map(|l| l.backend)
}

#[test]
fn each_process_runs_on_a_backend_serving_its_model_in_queue_order() {
    let mut s = state(&[("a", 1, &["small"], false), ("b", 2, &["big"], false)]);
    let big1 = create(&mut s, Some("big"));
    let small = create(&mut s, Some("small"));
    let big2 = create(&mut s, Some("big"));
    let big3 = create(&mut s, Some("big"));
    let launches = s.dispatch();
    assert_eq!(backend_of(&launches, big1), Some(1));
    assert_eq!(backend_of(&launches, small), Some(0));
    assert_eq!(backend_of(&launches, big2), Some(1));
    assert_eq!(backend_of(&launches, big3), None, "b's two slots are taken");
    let slots: Vec<u32> = launches.iter().map(|l| l.generation.slot).collect();
    assert_eq!(slots, [0, 0, 1], "each server is told its own slot number");
    let listed = s
        .pool_model_list()
        .expect("several backends list their models");
    assert_eq!(listed["data"][0]["id"], "big");
    assert_eq!(listed["data"][1]["id"], "small");
    let err = s.check_model(Some("huge")).unwrap_err().message;
    assert!(
        err.contains("`huge`") && err.contains("big, small"),
        "{err}"
    );
    assert!(s.check_model(Some("small")).is_ok());
}

#[test]
fn a_failing_backend_leaves_the_pool_and_its_process_continues_on_another() {
    let mut s = state(&[("a", 1, &[], false), ("b", 1, &[], false)]);
    let first = create(&mut s, None);
    let second = create(&mut s, None);
    let launches = s.dispatch();
    let on_a = launches.iter().find(|l| l.pid == first).unwrap();
    assert_eq!(on_a.backend, 0);
    assert!(s.on_text(first, on_a.run_id, "t0 ".into()));
    // b finishes its process; then a breaks off mid-answer.
    let on_b = launches.iter().find(|l| l.pid == second).unwrap();
    let done = RunOutcome::Completed {
        finish_reason: None,
    };
    s.on_run_end(second, on_b.run_id, done);
    let refused = BackendError::Refused {
        url: "http://a.test/v1".into(),
    };
    s.on_run_end(first, on_a.run_id, RunOutcome::Failed(refused));
    assert!(!s.pool.get(0).unwrap().up);
    assert_eq!(
        s.backends_down_note().as_deref(),
        Some(", 1 of 2 backends down")
    );
    assert_eq!(s.pool.probes_due, [0], "a probe waits for it to come back");
    let moved = s.dispatch();
    assert_eq!(backend_of(&moved, first), Some(1), "continues on b at once");
    let last = moved[0].generation.messages.last().unwrap();
    assert_eq!(
        last.content, "t0 ",
        "the continuation carries the partial answer"
    );
    assert_eq!(s.pool.migrations, 1);
    assert!(
        s.get(first).unwrap().retry.is_none(),
        "no retry was charged"
    );
    s.pool.mark_up(0);
    assert_eq!(s.backends_down_note(), None);
    let third = create(&mut s, None);
    assert_eq!(
        backend_of(&s.dispatch(), third),
        Some(0),
        "back, it takes work"
    );
}

#[test]
fn a_switched_out_process_goes_back_to_its_free_slot_else_migrates() {
    let mut s = state(&[("a", 1, &[], false), ("b", 1, &[], false)]);
    let p = create(&mut s, None);
    let launch = s.dispatch().remove(0);
    assert_eq!(launch.backend, 0);
    s.on_text(p, launch.run_id, "t0 ".into());
    s.on_run_end(p, launch.run_id, RunOutcome::Cancelled);
    let back = s.dispatch().remove(0);
    assert_eq!(back.backend, 0, "its old slot is free: it goes back");
    // While it waits, a newcomer leaves its slot (whose cache it needs) alone while another is
    // free; a second newcomer, with no other slot free, takes it; p then moves to b rather than wait.
    s.on_run_end(p, back.run_id, RunOutcome::Cancelled);
    s.get_mut(p).unwrap().last_slot = Some(0);
    s.scheduler.retire(p);
    let filler = create(&mut s, None);
    let filler_launch = s.dispatch().remove(0);
    assert_eq!((filler_launch.pid, filler_launch.backend), (filler, 1));
    let other = create(&mut s, None);
    let other_launch = s.dispatch().remove(0);
    assert_eq!((other_launch.pid, other_launch.backend), (other, 0));
    let stop = RunOutcome::Completed {
        finish_reason: Some("stop".into()),
    };
    s.on_run_end(filler, filler_launch.run_id, stop);
    s.enqueue(p);
    let moved = s.dispatch().remove(0);
    assert_eq!((moved.pid, moved.backend), (p, 1));
    assert_eq!(s.pool.migrations, 1);
}

#[test]
fn a_removed_backend_drains_its_movable_work_and_takes_no_more() {
    let mut s = state(&[("a", 1, &[], false), ("b", 1, &[], false)]);
    let p = create(&mut s, None);
    let launch = s.dispatch().remove(0);
    assert_eq!(launch.backend, 0);
    assert!(s.remove_backend("a"));
    assert!(launch.cancel.is_cancelled(), "its run is ended to move");
    s.on_run_end(p, launch.run_id, RunOutcome::Cancelled);
    assert_eq!(s.dispatch().remove(0).backend, 1);
    assert_eq!(s.config.cpus, 1);
    let q = create(&mut s, None);
    assert!(s.dispatch().is_empty(), "a takes no new work");
    assert!(s.get(q).is_some());
}

#[test]
fn a_swap_server_runs_one_models_work_before_switching_and_counts_the_switch() {
    let mut s = state(&[("one", 1, &["x", "y"], true), ("spare", 1, &["z"], false)]);
    let x1 = create(&mut s, Some("x"));
    let y1 = create(&mut s, Some("y"));
    let x2 = create(&mut s, Some("x"));
    let first = s.dispatch().remove(0);
    assert_eq!(first.pid, x1);
    s.on_run_end(
        x1,
        first.run_id,
        RunOutcome::Completed {
            finish_reason: None,
        },
    );
    let next = s.dispatch().remove(0);
    assert_eq!(
        next.pid, x2,
        "x is loaded: x2 before y1, though y1 came first"
    );
    assert_eq!(s.pool.model_switches, 0);
    s.on_run_end(
        x2,
        next.run_id,
        RunOutcome::Completed {
            finish_reason: None,
        },
    );
    let then = s.dispatch().remove(0);
    assert_eq!(then.pid, y1);
    assert_eq!(s.pool.model_switches, 1);
    assert_eq!(
        s.context_switches, 1,
        "a model switch is charged like a context switch"
    );
}
