//! Two real llama-servers serving the same model as one machine: a process switched out on one
//! finishes on the other with one unbroken answer (the continuation carries its conversation and
//! partial answer to a server that has never seen it).

use crate::support::{Kernel, eventually, setup};
use llmkernel::proto::{Pid, ProcessState};

#[tokio::test]
async fn a_process_switched_out_on_one_server_finishes_on_the_other_with_one_answer() {
    let Some(llama) = setup().await else { return };
    let first = llama.server(1).await;
    let second = llama.server(1).await;
    let (a, b) = (first.url(), second.url());
    let k = Kernel::start(&["--backend", &a, "--backend", &b, "--quantum", "8"]).await;
    let story = k
        .background("query --max-tokens 48 \"Tell a short story about a lighthouse keeper.\"")
        .await;
    eventually("the story to start on the first server", || async {
        k.process(story).await.is_some_and(|p| p.tokens_used >= 8)
    })
    .await;
    // A question takes the second server's slot, and the story is stopped: a second question finds
    // only the first server's slot free and takes it (a new process leaves a stopped process's slot
    // alone only while another is free).
    let blocker = k
        .background("query --max-tokens 400 \"Describe the sea at length.\"")
        .await;
    eventually("the first question to run", || {
        is_in(&k, blocker, ProcessState::Running)
    })
    .await;
    let (status, _, err) = k.sh(&format!("kill -STOP {story}")).await;
    assert_eq!(status, 0, "{err}");
    eventually("the story to stop", || {
        is_in(&k, story, ProcessState::Stopped)
    })
    .await;
    let question = k
        .background("query --max-tokens 400 \"Name ten colours, one per line.\"")
        .await;
    eventually("the second question to run", || {
        is_in(&k, question, ProcessState::Running)
    })
    .await;
    // The second server's slot is freed: the story, continued, moves there.
    let (status, _, err) = k.sh(&format!("kill -KILL {blocker}")).await;
    assert_eq!(status, 0, "{err}");
    eventually("the first question to end", || {
        is_in(&k, blocker, ProcessState::Zombie)
    })
    .await;
    let before = k.output(story).await;
    let (status, _, err) = k.sh(&format!("kill -CONT {story}")).await;
    assert_eq!(status, 0, "{err}");
    eventually("the story to finish", || {
        is_in(&k, story, ProcessState::Zombie)
    })
    .await;
    let _ = k.sh(&format!("kill -KILL {question}")).await;
    let (_, sched, _) = k.sh("sched").await;
    assert!(
        sched.contains("migrations 1"),
        "the story did not move:\n{sched}"
    );
    let after = k.output(story).await;
    eprintln!("before the move: {before:?}\nafter it: {after:?}");
    assert!(!before.trim().is_empty(), "nothing before the move");
    assert!(
        after.starts_with(&before),
        "the answer changed across the move:\nbefore: {before:?}\nafter:  {after:?}"
    );
    let continuation = &after[before.len()..];
    assert!(
        !continuation.trim().is_empty(),
        "nothing after the move: {after:?}"
    );
    let head: String = before.trim_start().chars().take(16).collect();
    assert!(
        !continuation.trim_start().starts_with(&head) && after.matches(&head).count() == 1,
        "the moved answer repeats what it had before:\n{after:?}"
    );
    k.stop().await;
}

async fn is_in(k: &Kernel, pid: Pid, state: ProcessState) -> bool {
    k.process(pid).await.is_some_and(|p| p.state == state)
}
