//! How the state meets a failing backend, driven by hand on the kernel clock: requeue with the output
//! kept, the circuit holding dispatch and sending one probe, the retry budget, and the allowance held
//! against a server that ignores it.

use super::{KernelState, Launch, RunOutcome};
use crate::config::{KernelConfig, RetrySettings};
use crate::kernel::circuit::CircuitState;
use crate::kernel::make_policy;
use crate::kernel::process::Spec;
use crate::kernel::scheduler::Scheduler;
use crate::llm::BackendError;
use crate::proto::{ExitStatus, Pid, ProcessState, ProcessType, Role, Signal};
use std::time::Duration;

const URL: &str = "http://backend.test/v1";

fn state(cpus: u32, retry: RetrySettings) -> KernelState {
    let config = KernelConfig {
        cpus,
        quantum_tokens: 1000,
        retry,
        ..KernelConfig::default()
    };
    let policy = make_policy(crate::config::PolicyKind::RoundRobin, &config);
    KernelState::new(config, Scheduler::new(policy))
}

fn quick() -> RetrySettings {
    RetrySettings {
        backoff_initial: Duration::from_millis(100),
        backoff_max: Duration::from_millis(400),
        retry_for: Duration::from_secs(60),
        max_retries: None,
        request_attempts: 3,
    }
}

fn create(s: &mut KernelState, allowance: u32) -> Pid {
    let spec = Spec {
        uid: 1000,
        process_type: ProcessType::User,
        system: None,
        prompt: "hello".into(),
        allowance,
    };
    s.create(spec, 0).expect("create")
}

fn refused() -> RunOutcome {
    RunOutcome::Failed(BackendError::Refused { url: URL.into() })
}

fn fail(s: &mut KernelState, launch: &Launch, outcome: RunOutcome) {
    s.on_run_end(launch.pid, launch.run_id, outcome);
}

/// Moves the clock to the end of the circuit's backoff.
fn until_reopened(s: &mut KernelState) {
    if let CircuitState::Open { until_ms } = s.circuit.state() {
        let now = s.now_ms();
        s.advance_clock(until_ms.saturating_sub(now) + 1);
    }
}

#[test]
fn a_failure_before_any_token_requeues_the_process_and_holds_dispatch() {
    let mut s = state(1, quick());
    let pid = create(&mut s, 100);
    let launch = s.dispatch().pop().expect("launch");
    fail(&mut s, &launch, refused());
    let p = s.get(pid).expect("process");
    assert_eq!(p.state, ProcessState::Waiting);
    let note = p.note_at(s.now_ms()).expect("note");
    assert!(
        note.starts_with(&format!(
            "backend {URL} refused the connection; retrying in 0."
        )) && note.ends_with("(attempt 2)"),
        "{note}"
    );
    assert!(s.dispatch().is_empty(), "the circuit holds dispatch");
    until_reopened(&mut s);
    let probe = s.dispatch().pop().expect("the probe");
    assert_eq!(probe.pid, pid);
    assert!(s.on_text(pid, probe.run_id, "t0 ".into()));
    assert_eq!(s.circuit.state(), CircuitState::Closed);
    assert_eq!(s.get(pid).expect("process").note_at(s.now_ms()), None);
}

#[test]
fn a_failure_mid_stream_continues_at_once_with_the_output_kept() {
    let mut s = state(1, quick());
    let pid = create(&mut s, 100);
    let launch = s.dispatch().pop().expect("launch");
    assert!(s.on_text(pid, launch.run_id, "t0 ".into()));
    let broken = BackendError::Broken {
        url: URL.into(),
        detail: "reset".into(),
    };
    fail(&mut s, &launch, RunOutcome::Failed(broken));
    assert_eq!(s.circuit.state(), CircuitState::Closed);
    let again = s.dispatch().pop().expect("dispatched again at once");
    let last = again.generation.messages.last().expect("messages");
    assert_eq!((last.role, last.content.as_str()), (Role::Assistant, "t0 "));
}

#[test]
fn one_probe_at_a_time_and_waiting_processes_burn_no_tries() {
    let mut s = state(2, quick());
    let pids: Vec<Pid> = (0..3).map(|_| create(&mut s, 100)).collect();
    let launches = s.dispatch();
    assert_eq!(launches.len(), 2);
    for launch in &launches {
        fail(&mut s, launch, refused());
    }
    assert_eq!(s.circuit.failures(), 1, "failures of one outage count once");
    for _ in 0..3 {
        until_reopened(&mut s);
        let probes = s.dispatch();
        assert_eq!(probes.len(), 1, "one probe while half-open");
        fail(&mut s, &probes[0], refused());
    }
    let tries: u32 = pids
        .iter()
        .filter_map(|p| s.get(*p)?.retry.as_ref().map(|r| r.failures))
        .sum();
    assert_eq!(tries, 5, "two first runs and three probes");
    until_reopened(&mut s);
    let probe = s.dispatch().pop().expect("probe");
    assert!(s.on_text(probe.pid, probe.run_id, "t0 ".into()));
    assert_eq!(s.dispatch().len(), 1, "closed again: the other slot fills");
}

#[test]
fn a_cancelled_probe_lets_another_process_probe() {
    let mut s = state(1, quick());
    let a = create(&mut s, 100);
    let b = create(&mut s, 100);
    let first = s.dispatch().pop().expect("launch");
    fail(&mut s, &first, refused());
    until_reopened(&mut s);
    let probe = s.dispatch().pop().expect("probe");
    s.kill(probe.pid, Signal::Kill);
    s.on_run_end(probe.pid, probe.run_id, RunOutcome::Cancelled);
    let next = s.dispatch().pop().expect("another probe");
    assert_ne!(next.pid, probe.pid);
    assert!([a, b].contains(&next.pid));
}

#[test]
fn a_process_fails_with_the_last_reason_once_its_retry_budget_is_spent() {
    let retry = RetrySettings {
        retry_for: Duration::from_secs(2),
        ..quick()
    };
    let mut s = state(1, retry);
    let pid = create(&mut s, 100);
    let mut tries = 0;
    while s.get(pid).is_some_and(|p| p.exit.is_none()) {
        until_reopened(&mut s);
        let launch = s.dispatch().pop().expect("launch");
        fail(&mut s, &launch, refused());
        tries += 1;
        assert!(tries < 100, "the budget ends the retries");
    }
    let p = s.get(pid).expect("zombie");
    let Some(ExitStatus::Failed { reason }) = &p.exit else {
        panic!("{:?}", p.exit);
    };
    assert!(
        reason.starts_with(&format!(
            "backend {URL} refused the connection (gave up after {tries} tries in "
        )),
        "{reason}"
    );
    assert_eq!(p.note.as_deref(), Some(reason.as_str()));
    assert_eq!(s.running(), 0, "no slot is left held");
}

#[test]
fn max_retries_zero_fails_at_the_first_failure_and_definite_errors_fail_at_once() {
    let retry = RetrySettings {
        max_retries: Some(0),
        ..quick()
    };
    let mut s = state(1, retry);
    let pid = create(&mut s, 100);
    let launch = s.dispatch().pop().expect("launch");
    fail(&mut s, &launch, refused());
    let reason = format!("backend {URL} refused the connection");
    assert_eq!(
        s.get(pid).and_then(|p| p.exit.clone()),
        Some(ExitStatus::Failed { reason })
    );

    let mut s = state(1, quick());
    let pid = create(&mut s, 100);
    let launch = s.dispatch().pop().expect("launch");
    let bad = BackendError::Http {
        url: URL.into(),
        status: 400,
        body: "bad request".into(),
        retry_after: None,
    };
    fail(&mut s, &launch, RunOutcome::Failed(bad));
    assert!(matches!(
        s.get(pid).and_then(|p| p.exit.clone()),
        Some(ExitStatus::Failed { .. })
    ));
    assert_eq!(
        s.circuit.state(),
        CircuitState::Closed,
        "the server answered"
    );
}

#[test]
fn the_allowance_holds_against_a_server_that_ignores_max_tokens() {
    let mut s = state(1, quick());
    let pid = create(&mut s, 3);
    let launch = s.dispatch().pop().expect("launch");
    assert_eq!(launch.generation.max_tokens, 3);
    for i in 0..3 {
        assert!(s.on_text(pid, launch.run_id, format!("t{i} ")));
    }
    assert!(
        !s.on_text(pid, launch.run_id, "t3 ".into()),
        "past the allowance"
    );
    s.on_run_end(pid, launch.run_id, RunOutcome::Cancelled);
    let p = s.get(pid).expect("zombie");
    assert_eq!(p.exit, Some(ExitStatus::Finished));
    assert_eq!(p.output, "t0 t1 t2 ");
    assert_eq!(
        p.note.as_deref(),
        Some("stopped at its token allowance (3)")
    );
    assert_eq!(s.running(), 0);
}

#[test]
fn a_stall_right_at_the_allowance_finishes_the_process() {
    let mut s = state(1, quick());
    let pid = create(&mut s, 2);
    let launch = s.dispatch().pop().expect("launch");
    for i in 0..2 {
        assert!(s.on_text(pid, launch.run_id, format!("t{i} ")));
    }
    let stalled = BackendError::Stalled {
        url: URL.into(),
        timeout: Duration::from_secs(1),
    };
    fail(&mut s, &launch, RunOutcome::Failed(stalled));
    assert_eq!(
        s.get(pid).and_then(|p| p.exit.clone()),
        Some(ExitStatus::Finished)
    );
}

#[test]
fn a_new_backend_url_is_tried_at_once_whatever_the_old_circuit_said() {
    let mut s = state(1, quick());
    create(&mut s, 100);
    let launch = s.dispatch().pop().expect("launch");
    fail(&mut s, &launch, refused());
    assert!(s.dispatch().is_empty());
    let same = s.config.clone();
    s.reconfigure(same, None);
    assert!(
        s.dispatch().is_empty(),
        "the same backend keeps its circuit"
    );
    let moved = KernelConfig {
        backend_url: "http://elsewhere.test/v1".into(),
        ..s.config.clone()
    };
    s.reconfigure(moved, None);
    assert_eq!(s.dispatch().len(), 1);
}

fn http_500() -> BackendError {
    BackendError::Http {
        url: URL.into(),
        status: 500,
        body: "template error".into(),
        retry_after: None,
    }
}

#[test]
fn a_request_the_backend_fails_while_up_is_retried_without_holding_the_others_then_fails() {
    let mut s = state(1, quick());
    let bad = create(&mut s, 100);
    let good = create(&mut s, 100);
    let mut tries = 0;
    let mut others = Vec::new();
    while s.get(bad).is_some_and(|p| p.exit.is_none()) {
        let launch = s
            .dispatch()
            .pop()
            .expect("the circuit never holds dispatch");
        assert_eq!(s.circuit.state(), CircuitState::Closed);
        if launch.pid == bad {
            tries += 1;
            fail(&mut s, &launch, RunOutcome::Rejected(http_500()));
        } else {
            others.push(launch.pid);
            assert!(s.on_text(launch.pid, launch.run_id, "t0 ".into()));
            s.on_run_end(
                launch.pid,
                launch.run_id,
                RunOutcome::Completed {
                    finish_reason: None,
                },
            );
        }
        assert!(tries <= 3, "request_attempts bounds the tries");
    }
    assert_eq!(tries, 3);
    assert_eq!(others, [good], "the other process ran between the tries");
    let p = s.get(bad).expect("zombie");
    let reason = format!("backend {URL} answered HTTP 500: template error (gave up after 3 tries)");
    assert_eq!(p.exit, Some(ExitStatus::Failed { reason }));
    assert_eq!(s.circuit.failures(), 0);
}

#[test]
fn a_backend_that_resets_after_every_token_is_backed_off_more_and_more() {
    let mut s = state(1, quick());
    let pid = create(&mut s, 100);
    let broken = || {
        RunOutcome::Failed(BackendError::Broken {
            url: URL.into(),
            detail: "connection reset".into(),
        })
    };
    let mut waits = Vec::new();
    for _ in 0..4 {
        until_reopened(&mut s);
        let launch = s.dispatch().pop().expect("launch");
        assert!(s.on_text(pid, launch.run_id, "t ".into()));
        let before = s.now_ms();
        fail(&mut s, &launch, broken());
        waits.push(match s.circuit.state() {
            CircuitState::Open { until_ms } => until_ms - before,
            _ => 0,
        });
    }
    assert_eq!(waits[0], 0, "one break is let go: {waits:?}");
    assert!(
        waits[1] > 0 && waits[2] > waits[1] && waits[3] >= waits[2],
        "{waits:?}"
    );
    assert!(s.dispatch().is_empty(), "the circuit holds dispatch");
    assert_eq!(s.get(pid).map(|p| p.state), Some(ProcessState::Waiting));
}

/// Follows `pid` as a foreground shell does; the receiver keeps the follower alive.
fn follow(s: &mut KernelState, pid: Pid) -> tokio::sync::mpsc::Receiver<crate::proto::Reply> {
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    s.get_mut(pid).expect("process").followers.push(tx);
    rx
}

#[test]
fn followed_waiting_processes_are_told_the_backend_failure_or_their_place_in_the_queue() {
    let mut s = state(1, quick());
    let running = create(&mut s, 100);
    let queued = create(&mut s, 100);
    let _rx = (follow(&mut s, running), follow(&mut s, queued));
    let launch = s.dispatch().pop().expect("launch");
    assert_eq!(launch.pid, running);
    assert!(s.waiting_notes().is_empty(), "no one has waited long yet");
    s.advance_clock(super::waiting::LONG_WAIT_MS);
    let notes = s.waiting_notes();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(
        (notes[0].0, notes[0].1.text.as_str()),
        (queued, "queued at position 1")
    );

    fail(&mut s, &launch, refused());
    let notes = s.waiting_notes();
    assert_eq!(notes.len(), 2, "{notes:?}");
    for (pid, note) in &notes {
        assert!(
            note.text.starts_with(&format!(
                "backend {URL} refused the connection; retrying in "
            )),
            "{pid}: {}",
            note.text
        );
    }
    let mut rx = follow(&mut s, queued);
    s.tell_waiting(queued, &notes[1].1, true);
    let Ok(Ok(crate::proto::Response::Waiting(w))) = rx.try_recv() else {
        panic!("no waiting note");
    };
    assert_eq!((w.pid, w.news), (queued, true));
}
