//! A backend that dies mid-answer: its running and queued processes go on on the other backend
//! serving their model, each answer unbroken; once it answers again it takes work again.

use super::{background, entry, fake, final_output, kernel, running_with};
use crate::support::fake_llm::answer;

#[tokio::test]
async fn a_backend_dying_mid_answer_hands_its_work_to_the_other_and_takes_work_when_back() {
    let mut a = fake("m", 15).await;
    let b = fake("m", 15).await;
    let config = format!("{}{}", entry("a", &a.url), entry("b", &b.url));
    let k = kernel(&config, &["--quantum", "1000"]).await;
    let first = background(&k, "query --max-tokens 200 '[tokens=200] first'").await;
    let second = background(&k, "query --max-tokens 200 '[tokens=200] second'").await;
    let third = background(&k, "query --max-tokens 200 '[tokens=200] third'").await;
    running_with(&k, first, 20).await;
    a.stop().await;
    k.eventually_wide("sched", "a to be down", |s| {
        s.lines()
            .any(|l| l.trim_start().starts_with("a ") && l.contains("down"))
    })
    .await;
    for pid in [first, second, third] {
        assert_eq!(final_output(&k, pid).await, answer(200), "pid {pid}");
    }
    let sched = k.sh_wide("sched").await.stdout;
    assert!(sched.contains("migrations 1"), "{sched}");
    a.restart().await;
    k.eventually_wide("sched", "a to be up again", |s| {
        s.lines()
            .any(|l| l.trim_start().starts_with("a ") && l.contains(" up "))
    })
    .await;
    let before = a.requests().len();
    let x = background(&k, "query --max-tokens 50 '[tokens=50] x'").await;
    let y = background(&k, "query --max-tokens 50 '[tokens=50] y'").await;
    for pid in [x, y] {
        assert_eq!(final_output(&k, pid).await, answer(50));
    }
    assert!(a.requests().len() > before, "a takes work again");
}
