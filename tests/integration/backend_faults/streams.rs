//! A backend that misbehaves while it answers: every read has a deadline (a trickling error body, a
//! trickling `/models`, a trickling whole answer), a line without end is a malformed stream (not a spinning CPU), empty chunks
//! without a token are a stall, invalid UTF-8 is named, and a server that resets after every token is
//! backed off.

use super::{fake, start};
use crate::support::fake_llm::{FakeConfig, FakeLlm, Fault, answer};
use crate::support::{TestKernel, config_file, job_pid};
use std::time::Duration;

#[tokio::test]
async fn an_error_whose_body_trickles_does_not_hold_the_slot() {
    let fake = FakeLlm::start(fake(Fault::TrickleStatus(503), Some(1))).await;
    let (k, _cfg) = start(&fake.url, "", &[]).await;
    let run = k.sh("query hello").await;
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(run.stdout, format!("{}\n", answer(10)));
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn a_model_list_that_trickles_is_given_up_on_and_asked_again() {
    let fake = FakeLlm::start(FakeConfig {
        slow_models: 1,
        ..FakeConfig::default()
    })
    .await;
    let (k, _cfg) = start(&fake.url, "first_token_timeout_secs = 0.5\n", &[]).await;
    let run = k.sh("query hello").await;
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(run.stdout, format!("{}\n", answer(10)));
    assert!(
        fake.models_requests() >= 2,
        "asked again after the deadline"
    );
}

#[tokio::test]
async fn a_line_without_end_is_a_malformed_stream_and_the_output_is_kept() {
    let fake = FakeLlm::start(fake(Fault::HugeLineAfter(2), None)).await;
    let (k, _cfg) = start(&fake.url, "", &[]).await;
    let pid = job_pid(&k.sh("query hello &").await.stdout);
    let wait = k.sh(&format!("wait {pid}")).await;
    assert_eq!(wait.status, 1, "{wait:?}");
    assert!(
        wait.stderr
            .contains("sent a malformed stream: a line or event larger than 1024 KiB"),
        "{wait:?}"
    );
    assert_eq!(fake.requests().len(), 1, "not retried");
}

#[tokio::test]
async fn empty_chunks_without_a_token_are_a_stall_and_the_answer_resumes() {
    let fake = FakeLlm::start(fake(Fault::EmptyChunksAfter(3), Some(1))).await;
    let (k, _cfg) = start(&fake.url, "token_timeout_secs = 0.3\n", &[]).await;
    let run = k.sh("query hello").await;
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        format!("{}\n", answer(10)),
        "one unbroken answer"
    );
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].resumed_at(), 3);
}

#[tokio::test]
async fn invalid_utf8_is_reported_as_invalid_utf8() {
    let fake = FakeLlm::start(fake(Fault::InvalidUtf8After(2), None)).await;
    let (k, _cfg) = start(&fake.url, "token_timeout_secs = 0.3\n", &[]).await;
    let run = k.sh("query hello").await;
    assert_eq!(run.status, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("sent a malformed stream: invalid UTF-8"),
        "{run:?}"
    );
    assert!(!run.stderr.contains("stalled"), "{run:?}");
}

#[tokio::test]
async fn a_backend_that_resets_after_every_token_is_backed_off() {
    let fake = FakeLlm::start(FakeConfig {
        tokens: 6,
        ..fake(Fault::ResetAfter(1), None)
    })
    .await;
    let (_cfg, path) =
        config_file("[backend]\nbackoff_initial_secs = 0.1\nbackoff_max_secs = 0.4\n");
    let k = TestKernel::start(&fake.url, &["--config", &path]).await;
    let run = k.sh("query hello").await;
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        format!("{}\n", answer(6)),
        "one unbroken answer"
    );
    let requests = fake.requests();
    assert_eq!(requests.len(), 6, "one token per request");
    // The first break is let go; the next four wait at least 0.75 x 0.1, 0.2, 0.4, 0.4 s.
    let waited = requests[5].at - requests[1].at;
    assert!(
        waited >= Duration::from_millis(800),
        "retried after {waited:?} in all"
    );
}

#[tokio::test]
async fn a_whole_answer_instead_of_a_stream_is_taken_and_one_that_trickles_is_given_up_on() {
    let fake = FakeLlm::start(fake(Fault::NotStreamed, None)).await;
    let (k, _cfg) = start(&fake.url, "", &[]).await;
    let run = k.sh("query hello").await;
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(run.stdout, format!("{}\n", answer(10)));

    fake.set(|c| {
        c.fault = Some(Fault::NotStreamedTrickle);
        c.fault_limit = Some(2);
    });
    let (k, _cfg) = start(&fake.url, "first_token_timeout_secs = 0.5\n", &[]).await;
    let run = k.sh("query hello").await;
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(run.stdout, format!("{}\n", answer(10)));
}
