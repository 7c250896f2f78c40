//! Pipes and groups driven by hand: a reader blocks without a place in the queue, gets its
//! upstream's output after its prompt, fails when its upstream does, breaks its upstream's pipe
//! when it ends unread, and a group ends as one under one signal.

use super::super::{KernelState, RunOutcome};
use super::NewLink;
use crate::config::KernelConfig;
use crate::kernel::make_policy;
use crate::kernel::process::{Ask, Spec};
use crate::kernel::scheduler::Scheduler;
use crate::proto::{ExitStatus, Pid, ProcessState, ProcessType, Role, Signal};

fn state() -> KernelState {
    let config = KernelConfig {
        cpus: 1,
        quantum_tokens: 1000,
        ..KernelConfig::default()
    };
    let policy = make_policy(crate::config::PolicyKind::RoundRobin, &config);
    KernelState::new(config, Scheduler::new(policy))
}

fn spec(prompt: &str) -> Spec {
    Spec {
        uid: 1000,
        process_type: ProcessType::User,
        system: None,
        prompt: prompt.into(),
        allowance: 100,
    }
}

/// `first | second | ...`: the pids, the first leading the group.
fn pipeline(s: &mut KernelState, prompts: &[&str]) -> Vec<Pid> {
    let mut pids: Vec<Pid> = Vec::new();
    for prompt in prompts {
        let link = NewLink {
            input_from: pids.last().copied(),
            continued_from: None,
            pgid: pids.first().copied(),
        };
        s.check_link(1000, &link).expect("link");
        pids.push(s.create_linked(spec(prompt), Ask::default(), 0, link).0);
    }
    pids
}

/// Runs whatever is dispatched to the end, each answering `text`.
fn run_all(s: &mut KernelState, text: &str) {
    loop {
        let launches = s.dispatch();
        if launches.is_empty() {
            return;
        }
        for l in launches {
            s.on_text(l.pid, l.run_id, text.into());
            let done = RunOutcome::Completed {
                finish_reason: None,
            };
            s.on_run_end(l.pid, l.run_id, done);
        }
    }
}

fn state_of(s: &KernelState, pid: Pid) -> ProcessState {
    s.get(pid).expect("in the table").state()
}

fn exit_of(s: &KernelState, pid: Pid) -> ExitStatus {
    s.get(pid).and_then(|p| p.exit()).cloned().expect("ended")
}

#[test]
fn a_reader_waits_blocked_without_a_queue_place_then_reads_the_output_after_its_prompt() {
    let mut s = state();
    let pids = pipeline(&mut s, &["list risks", "translate"]);
    assert_eq!(state_of(&s, pids[1]), ProcessState::Blocked);
    assert_eq!((s.waiting(), s.blocked()), (1, 1));
    let links = s.links(&pids, 1000);
    assert_eq!(links[1].blocked_on, Some(pids[0]));
    assert_eq!((links[1].ppid, links[1].pgid), (Some(pids[0]), pids[0]));
    assert_eq!(
        s.get(pids[1]).unwrap().note_at(0).as_deref(),
        Some(format!("waiting for the output of {}", pids[0]).as_str())
    );
    let launches = s.dispatch();
    assert_eq!(launches.len(), 1, "only the upstream runs");
    let l = &launches[0];
    s.on_text(l.pid, l.run_id, "risk one".into());
    s.on_run_end(
        l.pid,
        l.run_id,
        RunOutcome::Completed {
            finish_reason: None,
        },
    );
    assert_eq!(state_of(&s, pids[1]), ProcessState::Waiting);
    let launches = s.dispatch();
    let user = launches[0]
        .generation
        .messages
        .iter()
        .rfind(|m| m.role == Role::User)
        .expect("a user message");
    assert_eq!(user.content, "translate\n\nrisk one");
    assert_eq!(s.links(&pids, 1000)[1].blocked_on, None);
}

#[test]
fn a_failed_or_killed_upstream_fails_every_reader_down_the_pipeline_with_the_reason() {
    let mut s = state();
    let pids = pipeline(&mut s, &["a", "b", "c"]);
    s.signal(1000, pids[0], Signal::Kill).expect("kill");
    for reader in &pids[1..] {
        let ExitStatus::Failed { reason } = exit_of(&s, *reader) else {
            panic!("reader {reader} should have failed")
        };
        assert!(reason.contains("its input, process"), "{reason}");
        assert_eq!(exit_of(&s, *reader).code(), 1);
    }
    let ExitStatus::Failed { reason } = exit_of(&s, pids[1]) else {
        unreachable!()
    };
    assert!(reason.contains("was killed by SIGKILL"), "{reason}");
}

#[test]
fn a_reader_ending_unread_breaks_its_upstreams_pipe_with_sigpipe() {
    let mut s = state();
    let pids = pipeline(&mut s, &["a", "b", "c"]);
    s.signal(1000, pids[2], Signal::Int).expect("int");
    for writer in &pids[..2] {
        assert_eq!(exit_of(&s, *writer).code(), 141, "{writer}");
    }
}

#[test]
fn a_group_signal_ends_every_member_by_that_signal_and_leaves_others_alone() {
    let mut s = state();
    let pids = pipeline(&mut s, &["a", "b"]);
    let other = pipeline(&mut s, &["c"]);
    let (signalled, _) = s.signal_group(1000, pids[0], Signal::Term).expect("group");
    assert_eq!(signalled.len(), 2);
    for pid in &pids {
        let code = exit_of(&s, *pid).code();
        assert_eq!(code, 143, "{pid}");
    }
    assert_eq!(state_of(&s, other[0]), ProcessState::Waiting);
    assert!(s.signal_group(1000, Pid(99), Signal::Term).is_err());
    assert!(
        s.signal_group(1001, other[0], Signal::Term).is_err(),
        "not theirs"
    );
}

#[test]
fn a_stopped_reader_continues_to_wait_for_its_input_and_runs_once_continued() {
    let mut s = state();
    let pids = pipeline(&mut s, &["a", "b"]);
    s.signal(1000, pids[1], Signal::Stop).expect("stop");
    s.signal(1000, pids[1], Signal::Cont).expect("cont");
    assert_eq!(state_of(&s, pids[1]), ProcessState::Blocked);
    s.signal(1000, pids[1], Signal::Stop).expect("stop");
    run_all(&mut s, "x");
    assert_eq!(
        state_of(&s, pids[1]),
        ProcessState::Stopped,
        "fed but stopped"
    );
    s.signal(1000, pids[1], Signal::Cont).expect("cont");
    run_all(&mut s, "y");
    assert_eq!(exit_of(&s, pids[1]), ExitStatus::Finished);
}

#[test]
fn a_reader_of_an_already_finished_process_reads_at_once_and_a_missing_group_is_refused() {
    let mut s = state();
    let up = pipeline(&mut s, &["a"])[0];
    run_all(&mut s, "done");
    let link = NewLink {
        input_from: Some(up),
        continued_from: None,
        pgid: Some(up),
    };
    let (reader, _) = s.create_linked(spec("b"), Ask::default(), 0, link);
    assert_eq!(state_of(&s, reader), ProcessState::Waiting);
    let missing = NewLink {
        pgid: Some(Pid(77)),
        ..NewLink::default()
    };
    assert!(s.check_link(1000, &missing).is_err());
    assert!(
        s.check_link(1001, &link).is_err(),
        "another user's upstream"
    );
}

/// A recovered process: `pid` with `prompt`, in `state`, linked as `link` says.
fn image(
    pid: u64,
    prompt: &str,
    state: crate::kernel::journal::record::DurableState,
    link: Option<crate::kernel::journal::record::LinkRecord>,
) -> crate::kernel::journal::record::ProcessImage {
    let mut created = crate::kernel::journal::tests::created(pid);
    created.prompt = prompt.into();
    let mut image = crate::kernel::journal::record::ProcessImage::new(created);
    image.state = state;
    image.link = link.map(Box::new);
    image
}

#[test]
fn a_restore_settles_readers_whose_upstream_ended_while_the_kernel_was_down() {
    use crate::kernel::journal::record::{DurableState, LinkRecord};
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = crate::kernel::journal::Journal::open(dir.path()).unwrap();
    let reader_of = |pid: u64, up: u64| LinkRecord {
        pid: Pid(pid),
        ppid: Some(Pid(up)),
        pgid: Pid(1),
        piped: true,
        blocked: true,
    };
    let mut done = image(1, "draft", DurableState::Zombie, None);
    done.exit = Some(ExitStatus::Finished);
    done.output = "the draft".into();
    let mut recovered = crate::kernel::journal::Recovered {
        next_pid: 5,
        ..Default::default()
    };
    for p in [
        done,
        image(2, "shorten", DurableState::Waiting, Some(reader_of(2, 1))),
        image(3, "title", DurableState::Waiting, Some(reader_of(3, 2))),
        image(4, "orphan", DurableState::Waiting, Some(reader_of(4, 9))),
    ] {
        recovered.processes.insert(p.pid(), p);
    }
    let mut s = state();
    s.config.state_dir = dir.path().into();
    s.restore(journal, recovered).expect("restore");
    assert_eq!(state_of(&s, Pid(2)), ProcessState::Waiting, "fed");
    let fed = s.get(Pid(2)).unwrap().asked_messages();
    assert_eq!(fed.last().unwrap().content, "shorten\n\nthe draft");
    assert_eq!(state_of(&s, Pid(3)), ProcessState::Blocked, "still waits");
    let ExitStatus::Failed { reason } = exit_of(&s, Pid(4)) else {
        panic!("a reader whose input is gone fails")
    };
    assert!(reason.contains("process 9, is gone"), "{reason}");
    run_all(&mut s, "short");
    assert_eq!(exit_of(&s, Pid(3)), ExitStatus::Finished);
}

#[test]
fn blocked_readers_take_no_place_toward_max_queue() {
    let mut s = state();
    s.config.max_queue = 2;
    pipeline(&mut s, &["a", "b", "c"]);
    assert_eq!((s.waiting(), s.blocked()), (1, 2));
    assert!(crate::kernel::verbs::submit::check_room(&s).is_ok());
    pipeline(&mut s, &["d"]);
    assert!(crate::kernel::verbs::submit::check_room(&s).is_err());
}
