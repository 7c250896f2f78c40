//! Scheduling on the real server: a process taken off its slot (at once for more urgent work, or at a
//! quantum boundary among equals) resumes with one coherent answer, and killing a process frees its
//! server slot.

use crate::support::{Kernel, eventually, ps_column, setup};
use llmkernel::proto::ProcessState;

#[tokio::test]
async fn a_preempted_process_continues_its_own_answer() {
    let Some(llama) = setup().await else { return };
    let server = llama.server(1).await;
    let k = Kernel::start(&["--backend", &server.url(), "--cpus", "1", "--quantum", "8"]).await;
    let story = k
        .background(
            "query --type housekeeping --max-tokens 48 \"Tell a short story about a lighthouse keeper.\"",
        )
        .await;
    // A few words in, so that what it said before the switch is distinctive enough to tell a
    // repetition from the story's own words (the question switches it out at once).
    eventually("the story to start", || async {
        k.process(story).await.is_some_and(|p| p.tokens_used >= 8)
    })
    .await;
    let question = k
        .background("query --max-tokens 24 \"Name three colours.\"")
        .await;
    eventually("the story to give up its slot to the question", || async {
        k.process(story)
            .await
            .is_some_and(|p| p.state == ProcessState::Waiting)
    })
    .await;
    let before = k.output(story).await;
    eventually("both to finish", || async {
        let done = |p: Option<llmkernel::proto::ProcessInfo>| {
            p.is_some_and(|p| p.state == ProcessState::Zombie)
        };
        done(k.process(story).await) && done(k.process(question).await)
    })
    .await;
    let (_, ps, _) = k.sh("ps -l").await;
    let switches: u32 = ps_column(&ps, story, "CSW")
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no CSW for {story} in\n{ps}"));
    assert!(switches >= 1, "the story was never switched out:\n{ps}");
    let after = k.output(story).await;
    eprintln!("before the switch: {before:?}\nafter it: {after:?}");
    assert!(!before.trim().is_empty(), "nothing before the switch");
    assert!(
        after.starts_with(&before),
        "the answer changed across the switch:\nbefore: {before:?}\nafter:  {after:?}"
    );
    let continuation = &after[before.len()..];
    assert!(
        !continuation.trim().is_empty(),
        "nothing after the switch: {after:?}"
    );
    let head: String = before.trim_start().chars().take(16).collect();
    assert!(
        !continuation.trim_start().starts_with(&head) && after.matches(&head).count() == 1,
        "the resumed answer repeats what it had before the switch:\n{after:?}"
    );
    k.stop().await;
}

#[tokio::test]
async fn killing_a_process_frees_its_server_slot() {
    let Some(llama) = setup().await else { return };
    let server = llama.server(1).await;
    let k = Kernel::start(&["--backend", &server.url(), "--cpus", "1"]).await;
    const MAX_TOKENS: u64 = 1500;
    let pid = k
        .background(&format!(
            "query --max-tokens {MAX_TOKENS} \"Count from 1 to 3000, one number per line.\""
        ))
        .await;
    eventually("the server's slot to generate", || async {
        server.slots().await.first().is_some_and(|(busy, _)| *busy)
    })
    .await;
    let (status, _, stderr) = k.sh(&format!("kill -KILL {}", pid.0)).await;
    assert_eq!(status, 0, "{stderr}");
    eventually("the server's slot to be free", || async {
        server.slots().await.first().is_some_and(|(busy, _)| !*busy)
    })
    .await;
    let decoded = server.slots().await.first().map_or(0, |(_, n)| *n);
    assert!(
        decoded < MAX_TOKENS,
        "the slot ran to the end ({decoded} tokens) instead of stopping at the kill"
    );
    k.stop().await;
}
