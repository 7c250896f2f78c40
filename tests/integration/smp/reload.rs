//! SIGHUP adds and removes backends: the removed one's running process moves to the added one and
//! finishes there with its answer unbroken; nothing is lost.

use super::{background, entry, fake, final_output, kernel, rewrite_config, running_with};
use crate::support::fake_llm::answer;
use nix::sys::signal::Signal::SIGHUP;

#[tokio::test]
async fn sighup_adds_a_backend_and_removes_another_whose_work_moves_there() {
    let old = fake("m", 20).await;
    let new = fake("m", 0).await;
    let k = kernel(
        &format!("{}{}", entry("old", &old.url), entry("spare", &old.url)),
        &[],
    )
    .await;
    let long = background(&k, "query --max-tokens 300 '[tokens=300] story'").await;
    running_with(&k, long, 10).await;
    rewrite_config(&k, &entry("new", &new.url));
    k.signal(SIGHUP);
    assert_eq!(final_output(&k, long).await, answer(300));
    let moved = new.requests();
    assert!(
        moved.iter().any(|r| r.user_prompt().contains("story")),
        "the story finished on the new backend"
    );
    let sched = k
        .eventually_wide("sched", "only the new backend", |s| {
            s.contains("backends: 1") && s.contains("new")
        })
        .await;
    assert!(!sched.contains(&old.url), "{sched}");
    let after = background(&k, "query --max-tokens 5 after").await;
    final_output(&k, after).await;
    assert_eq!(new.requests().len(), moved.len() + 1);
}
