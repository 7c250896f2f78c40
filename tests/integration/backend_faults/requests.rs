//! One request the backend always fails (an HTTP 500 for one prompt, as from a chat template that
//! rejects it) holds no one else up: the server's health check says it is up, so the circuit stays
//! closed, and the bad request fails after its tries with the server's reason. And one `Retry-After`
//! cannot stop dispatching for a day.

use super::{fake, start};
use crate::support::fake_llm::{FakeConfig, FakeLlm, Fault, answer};
use crate::support::{TestKernel, config_file, job_pid};

#[tokio::test]
async fn a_prompt_the_backend_always_fails_holds_no_one_up_and_fails_with_its_reason() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    // A ten-minute backoff: had the bad request opened the circuit, the good one would wait it out
    // (and the shell time out).
    let (_cfg, path) = config_file(
        "[backend]\nbackoff_initial_secs = 600\nbackoff_max_secs = 600\nrequest_attempts = 3\n",
    );
    let k = TestKernel::start(&fake.url, &["--config", &path]).await;
    let bad = job_pid(&k.sh("query '[status=500] bad' &").await.stdout);
    let good = k.sh("query good").await;
    assert_eq!(
        (good.status, good.stdout.as_str()),
        (0, format!("{}\n", answer(10)).as_str()),
        "{good:?}"
    );
    let wait = k.sh(&format!("wait {bad}")).await;
    assert_eq!(wait.status, 1, "{wait:?}");
    let reason = format!(
        "backend {} answered HTTP 500: injected failure for this prompt (gave up after 3 tries)",
        fake.url
    );
    assert!(wait.stderr.contains(&reason), "{wait:?}");
    let bad_tries = fake
        .requests()
        .iter()
        .filter(|r| r.user_prompt().contains("bad"))
        .count();
    assert_eq!(bad_tries, 3, "request_attempts tries in all");
    let again = k.sh("query '[status=500] again'").await;
    assert_eq!(again.status, 1, "a foreground query fails the same way");
    assert!(again.stderr.contains("answered HTTP 500"), "{again:?}");
}

#[tokio::test]
async fn a_huge_retry_after_is_cut_to_the_longest_backoff() {
    let a_day = Fault::RetryAfter {
        status: 503,
        value: "100000".into(),
    };
    let fake = FakeLlm::start(fake(a_day, Some(1))).await;
    // backoff_max_secs is 0.2 here: without the cut, the retry would come after a day.
    let (k, _cfg) = start(&fake.url, "", &[]).await;
    let run = k.sh("query hello").await;
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(run.stdout, format!("{}\n", answer(10)));
    assert_eq!(fake.requests().len(), 2, "one refusal, one answer");
}
