//! Switching end to end: a question arriving while background work holds every slot switches one
//! process out at once (not at its quantum boundary) and `sched` counts it; the slot kept for
//! interactive work then serves the next question without another switch. (That the switched-out
//! process resumes whole is checked in `a_user_query_preempts_housekeeping_within_a_quantum…`.)

use super::{background, final_output, paced, sent_before};
use crate::support::TestKernel;
use crate::support::fake_llm::{FakeLlm, answer};

/// Longer than the background answers: without switching at once, a question would wait for one
/// of them to finish.
const QUANTUM: &str = "5000";
/// Background answers: long enough (10 s at the fake's pace) that the questions come while they run.
const BACKGROUND_TOKENS: usize = 1000;

#[tokio::test]
async fn a_question_into_full_slots_switches_one_process_out_at_once_and_sched_counts_it() {
    let fake = FakeLlm::start(paced(10)).await;
    let k = TestKernel::start(&fake.url, &["--cpus", "2", "--quantum", QUANTUM]).await;
    let mut hk = Vec::new();
    for n in 0..2 {
        let command = format!("query --type housekeeping '[tokens={BACKGROUND_TOKENS}] chores{n}'");
        hk.push(background(&k, &command).await);
    }
    k.eventually("sched", "both to run", |_| {
        fake.token_log().iter().map(|(i, _)| *i).max() == Some(1)
    })
    .await;
    let first = background(&k, "query '[tokens=20] question one'").await;
    assert_eq!(final_output(&k, first).await, answer(20));
    let sent: Vec<usize> = (0..2)
        .map(|n| sent_before(&fake, &format!("chores{n}"), "question one"))
        .collect();
    assert!(
        sent.iter().all(|s| *s < BACKGROUND_TOKENS),
        "the question waited for a whole answer: {sent:?}"
    );
    let sched = k.sh("sched").await.stdout;
    assert!(
        sched.contains("switches: 1 (1 at once for more urgent work)"),
        "{sched}"
    );
    assert!(
        sched.contains("reserved: 1 slot for USER and above, kept now"),
        "{sched}"
    );
    // The kept slot: the next question starts without switching anyone out.
    let second = background(&k, "query '[tokens=20] question two'").await;
    assert_eq!(final_output(&k, second).await, answer(20));
    let sched = k.sh("sched").await.stdout;
    assert!(sched.contains("switches: 1 "), "{sched}");
    for pid in hk {
        k.sh(&format!("kill -KILL {pid}")).await;
    }
}
