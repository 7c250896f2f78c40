//! System calls driven by hand: a caller's answer that ends with calls has them carried out, a
//! child never ranks above its caller, `wait` blocks the caller off the queue until the child
//! ends, and the results come back as `tool` messages naming their calls.

use super::{KernelState, RunOutcome};
use crate::config::KernelConfig;
use crate::kernel::make_policy;
use crate::kernel::memory::ContextSource;
use crate::kernel::process::{Ask, Spec};
use crate::kernel::scheduler::Scheduler;
use crate::kernel::syscalls::{self, SyscallState};
use crate::llm::{ChoiceDelta, ToolCallDelta};
use crate::proto::{Pid, ProcessState, ProcessType, Role};

fn state() -> KernelState {
    let config = KernelConfig {
        cpus: 2,
        quantum_tokens: 1000,
        ..KernelConfig::default()
    };
    let policy = make_policy(crate::config::PolicyKind::RoundRobin, &config);
    KernelState::new(config, Scheduler::new(policy))
}

/// A caller with system calls, of type `process_type` at `nice`.
fn caller(s: &mut KernelState, process_type: ProcessType, nice: i8) -> Pid {
    let spec = Spec {
        uid: 1000,
        process_type,
        system: None,
        prompt: "plan".into(),
        allowance: 100,
    };
    let mut ask = Ask::default();
    syscalls::enable(&mut ask, &SyscallState::default());
    s.create_asked(spec, ask, nice).0
}

/// Runs `pid` to the end of an answer that makes `calls`; returns the other runs dispatched.
fn answer_with_calls(s: &mut KernelState, pid: Pid, calls: &[(&str, &str)]) -> Vec<(Pid, u64)> {
    let launches = s.dispatch();
    let launch = launches.iter().find(|l| l.pid == pid).expect("dispatched");
    let others = launches
        .iter()
        .filter(|l| l.pid != pid)
        .map(|l| (l.pid, l.run_id))
        .collect();
    let tool_calls = calls
        .iter()
        .enumerate()
        .map(|(i, (name, args))| ToolCallDelta {
            index: i as u32,
            id: Some(format!("call_{i}")),
            name: Some(name.to_string()),
            arguments: Some(args.to_string()),
        })
        .collect();
    let delta = ChoiceDelta {
        tool_calls,
        finish_reason: Some("tool_calls".into()),
        ..Default::default()
    };
    assert!(s.on_choice(pid, launch.run_id, delta));
    let done = RunOutcome::Completed {
        finish_reason: Some("tool_calls".into()),
    };
    s.on_run_end(pid, launch.run_id, done);
    others
}

#[test]
fn a_child_is_a_user_subprocess_of_a_users_process_at_its_callers_nice() {
    let mut s = state();
    let user = caller(&mut s, ProcessType::User, 3);
    answer_with_calls(&mut s, user, &[("spawn", r#"{"prompt":"a"}"#)]);
    let child = s.get(Pid(2)).expect("the child");
    assert_eq!(child.spec.process_type, ProcessType::UserSubprocess);
    assert_eq!(child.nice, 3);
    assert_eq!((child.link.ppid, child.pgid()), (Some(user), user));
    assert_eq!(s.get(user).unwrap().state(), ProcessState::Waiting);
}

#[test]
fn a_childs_type_follows_its_callers_and_never_ranks_above_it() {
    for (parent, want) in [
        (ProcessType::User, ProcessType::UserSubprocess),
        (ProcessType::System, ProcessType::UserSubprocess),
        (ProcessType::UserSubprocess, ProcessType::LlmInitiated),
        (ProcessType::LlmInitiated, ProcessType::LlmInitiated),
        (ProcessType::Housekeeping, ProcessType::Housekeeping),
    ] {
        let mut s = state();
        let pid = caller(&mut s, parent, 0);
        answer_with_calls(&mut s, pid, &[("spawn", r#"{"prompt":"a"}"#)]);
        let child = s.get(Pid(2)).expect("the child");
        assert_eq!(child.spec.process_type, want, "a child of {parent:?}");
    }
}

#[test]
fn a_grandchild_of_the_users_process_is_llm_initiated() {
    let mut s = state();
    let user = caller(&mut s, ProcessType::User, 0);
    answer_with_calls(&mut s, user, &[("spawn", r#"{"prompt":"a"}"#)]);
    // The child (a USER_SUBPROCESS) is a model's process: what it spawns is LLM_INITIATED.
    answer_with_calls(&mut s, Pid(2), &[("spawn", r#"{"prompt":"b"}"#)]);
    let grandchild = s.get(Pid(3)).expect("the grandchild");
    assert_eq!(grandchild.spec.process_type, ProcessType::LlmInitiated);
    assert_eq!(grandchild.link.ppid, Some(Pid(2)));
}

#[test]
fn wait_blocks_the_caller_off_the_queue_until_the_child_ends_then_it_resumes_with_the_result() {
    let mut s = state();
    let pid = caller(&mut s, ProcessType::User, 0);
    answer_with_calls(&mut s, pid, &[("spawn", r#"{"prompt":"a"}"#)]);
    // The caller runs again beside its child, and waits on it.
    let others = answer_with_calls(&mut s, pid, &[("wait", r#"{"pid":2}"#)]);
    assert_eq!(others.len(), 1);
    let (child, run_id) = others[0];
    assert_eq!(child, Pid(2));
    assert_eq!(s.get(pid).unwrap().state(), ProcessState::Blocked);
    assert!(
        s.dispatch().is_empty(),
        "a blocked caller is not in the queue"
    );
    s.on_text(child, run_id, "found it".into());
    let done = RunOutcome::Completed {
        finish_reason: None,
    };
    s.on_run_end(child, run_id, done);
    let p = s.get(pid).unwrap();
    assert_eq!(p.state(), ProcessState::Waiting, "resumed");
    assert_eq!(
        p.tokens_used(),
        2 + 1,
        "its own two answers' calls and its child's token"
    );
    let roles: Vec<Role> = p.ask.messages.iter().map(|m| m.role).collect();
    assert_eq!(
        roles,
        [
            Role::User,
            Role::Assistant,
            Role::Tool,
            Role::Assistant,
            Role::Tool
        ]
    );
    let result: serde_json::Value =
        serde_json::from_str(&p.ask.messages[4].content).expect("a JSON result");
    assert_eq!(result["output"], "found it");
    assert_eq!(result["status"], "Done");
    assert!(p.output().contains("[tool result call_0] {\"pid\":2}"));
    // The next run sends no partial answer: the output so far is in the conversation.
    assert_eq!(p.conversation().len(), 5);
}

/// The estimate admission makes of a child spawned with `prompt` (and the tools it is offered).
fn child_prompt_tokens(prompt: &str) -> u32 {
    let tools = syscalls::tools().to_string();
    crate::kernel::memory::estimate_tokens([prompt, tools.as_str()]).tokens
}

#[test]
fn a_child_whose_prompt_fills_a_slot_is_enomem_and_not_created() {
    let mut s = state();
    let pid = caller(&mut s, ProcessType::User, 0);
    let size = child_prompt_tokens("a");
    s.memory.context = Some((size, ContextSource::Config));
    answer_with_calls(&mut s, pid, &[("spawn", r#"{"prompt":"a"}"#)]);
    assert!(s.get(Pid(2)).is_none(), "no child was created");
    let p = s.get(pid).unwrap();
    let result: serde_json::Value =
        serde_json::from_str(&p.ask.messages.last().unwrap().content).expect("a JSON result");
    assert_eq!(result["error"], "ENOMEM", "{result}");
    assert!(
        result["message"]
            .as_str()
            .is_some_and(|m| m.ends_with(&format!("a slot holds {size}"))),
        "{result}"
    );
    assert_eq!(syscalls::state_of(&p.ask).map(|st| st.spawned), Some(0));
}

#[test]
fn a_childs_allowance_past_the_context_is_cut_to_the_room_left_with_a_note() {
    let mut s = state();
    let pid = caller(&mut s, ProcessType::User, 0);
    let size = child_prompt_tokens("a") + 40;
    s.memory.context = Some((size, ContextSource::Config));
    answer_with_calls(
        &mut s,
        pid,
        &[("spawn", r#"{"prompt":"a","max_tokens":90}"#)],
    );
    let child = s.get(Pid(2)).expect("the child");
    assert_eq!(child.spec.allowance, 40);
    assert_eq!(child.memory.cut_from, Some(90));
    assert_eq!(child.memory.context_size, Some(size));
    assert_eq!(
        KernelState::admission_note(child).as_deref(),
        Some(format!("token allowance cut from 90 to 40 to fit a {size}-token slot").as_str())
    );
    // Without a known context size nothing is cut.
    let mut s = state();
    let pid = caller(&mut s, ProcessType::User, 0);
    answer_with_calls(
        &mut s,
        pid,
        &[("spawn", r#"{"prompt":"a","max_tokens":90}"#)],
    );
    let child = s.get(Pid(2)).expect("the child");
    assert_eq!((child.spec.allowance, child.memory.cut_from), (90, None));
}
