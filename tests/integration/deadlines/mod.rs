//! Deadlines end to end, through `llmsh` and the HTTP front door against the fake server: a process
//! still running at its hard deadline ends with status 152 (SIGXCPU) and its output kept, a soft
//! deadline only passes, `ps -l` shows the time left, and `edf` runs the earliest deadline first.
//! Token quotas are in [`quotas`], the soft limit that lets a model wrap up in [`soft_limit`].

mod quotas;
mod soft_limit;

use crate::http::client::{call, chat_body};
use crate::http::door;
use crate::support::fake_llm::{FakeConfig, FakeLlm, answer};
use crate::support::{TestKernel, job_pid, ps_row};
use std::time::Duration;

/// A fake server that takes `delay_ms` per token for answers of up to 2000 tokens.
fn paced(delay_ms: u64) -> FakeConfig {
    FakeConfig {
        tokens: 2000,
        delay: Duration::from_millis(delay_ms),
        ..Default::default()
    }
}

/// The seconds a `ps -l` line says are left before a deadline (`deadline in 598s`).
fn seconds_left(line: &str) -> Option<u64> {
    let (_, after) = line.split_once("deadline in ")?;
    after.split('s').next()?.parse().ok()
}

async fn background(k: &TestKernel, command: &str) -> u64 {
    let run = k.sh(&format!("{command} &")).await;
    assert_eq!(run.status, 0, "{run:?}");
    job_pid(&run.stdout)
}

#[tokio::test]
async fn a_query_running_at_its_deadline_exits_152_with_its_output_kept_and_the_reason_shown() {
    let fake = FakeLlm::start(paced(20)).await;
    let k = TestKernel::start(&fake.url, &[]).await;
    let run = k
        .sh("query --deadline 300ms '[tokens=2000] a long essay'")
        .await;
    assert_eq!(run.status, 152, "the foreground query's status: {run:?}");
    assert!(run.stdout.starts_with("t0 t1 "), "streamed: {run:?}");

    let pid = background(&k, "query --deadline 300ms '[tokens=2000] another essay'").await;
    let ps = k
        .eventually_wide("ps -l", "the deadline to end it", |ps| {
            ps_row(ps, pid).is_some_and(|r| r[5] == "Z")
        })
        .await;
    assert!(ps.contains("deadline of 0.3s passed"), "{ps}");
    let kept = k.sh(&format!("cat {pid}")).await.stdout;
    assert!(
        kept.starts_with("t0 t1 ") && kept.len() < answer(2000).len(),
        "{kept}"
    );
    let wait = k.sh(&format!("wait {pid}")).await;
    assert_eq!(wait.status, 152, "{wait:?}");
}

#[tokio::test]
async fn ps_l_shows_the_time_left_and_a_soft_deadline_passes_without_ending_the_query() {
    let fake = FakeLlm::start(paced(20)).await;
    let k = TestKernel::start(&fake.url, &[]).await;
    let far = background(&k, "query --deadline 10m '[tokens=2000] far off'").await;
    let soft = background(
        &k,
        "query --deadline 200ms --deadline-soft '[tokens=100] soft one'",
    )
    .await;
    let ps = k
        .eventually_wide("ps -l", "the soft deadline to pass", |ps| {
            ps.contains("soft deadline passed")
        })
        .await;
    let far_row = ps.lines().find(|l| l.contains("far off")).unwrap_or("");
    assert!(
        seconds_left(far_row).is_some_and(|s| (500..=600).contains(&s)),
        "{ps}"
    );
    k.eventually("ps", "the soft one to finish", |ps| {
        ps_row(ps, soft).is_some_and(|r| r[5] == "Z")
    })
    .await;
    assert_eq!(
        k.sh(&format!("cat {soft}")).await.stdout.trim_end(),
        answer(100).trim_end()
    );
    let wait = k.sh(&format!("wait {soft}")).await;
    assert_eq!(wait.status, 0, "a soft deadline ends nothing: {wait:?}");
    assert_eq!(k.sh(&format!("kill {far}")).await.status, 0);
}

#[tokio::test]
async fn edf_runs_a_later_but_more_urgent_query_first() {
    let fake = FakeLlm::start(paced(10)).await;
    let k = TestKernel::start(
        &fake.url,
        &["--policy", "edf", "--cpus", "1", "--quantum", "4"],
    )
    .await;
    let relaxed = background(&k, "query --deadline 9s '[tokens=400] relaxed'").await;
    k.eventually("ps", "the relaxed query to run", |ps| {
        ps_row(ps, relaxed).is_some_and(|r| r[5] == "R")
    })
    .await;
    let urgent = background(&k, "query --deadline 8s '[tokens=20] urgent'").await;
    let ps = k
        .eventually("ps", "the urgent query to finish", |ps| {
            ps_row(ps, urgent).is_some_and(|r| r[5] == "Z")
        })
        .await;
    let relaxed_row = ps_row(&ps, relaxed).unwrap_or_default();
    assert_ne!(relaxed_row[5], "Z", "the urgent one went first: {ps}");
    assert_eq!(k.sh(&format!("wait {urgent}")).await.status, 0);
    assert_eq!(k.sh(&format!("kill {relaxed}")).await.status, 0);
}

#[tokio::test]
async fn the_front_door_takes_a_deadline_from_a_header_or_the_body() {
    let (fake, _k, sock) = door(paced(20)).await;
    let body = chat_body("[tokens=2000] too long", "");
    let headers = [("X-LLMKernel-Deadline", "300ms")];
    let reply = call(&sock, "POST", "/v1/chat/completions", &headers, &body).await;
    assert_eq!(reply.status, 409, "{}", reply.body);
    assert!(reply.body.contains("SIGXCPU"), "{}", reply.body);

    let body = chat_body(
        "[tokens=30] in time",
        r#""deadline":"200ms","deadline_soft":true"#,
    );
    let reply = call(&sock, "POST", "/v1/chat/completions", &[], &body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["choices"][0]["message"]["content"], answer(30));
    let requests = fake.requests();
    let sent = &requests.last().expect("a request").body;
    assert!(
        sent.get("deadline").is_none() && sent.get("deadline_soft").is_none(),
        "{sent}"
    );

    let bad = [("X-LLMKernel-Deadline", "tomorrow")];
    let reply = call(&sock, "POST", "/v1/chat/completions", &bad, &body).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
}

#[tokio::test]
async fn a_deadline_survives_a_crash_and_a_restart() {
    let fake = FakeLlm::start(paced(50)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let k = TestKernel::start_in(dir, &fake.url, &[]).await;
    let pid = background(&k, "query --deadline 10m '[tokens=2000] slow and steady'").await;
    // An acknowledged change after the creation, so it is on disk before the crash.
    assert_eq!(k.sh(&format!("renice -n 1 {pid}")).await.status, 0);
    let dir = k.crash().await;
    let k = TestKernel::start_in(dir, &fake.url, &[]).await;
    let ps = k
        .eventually_wide("ps -l", "the restored process", |ps| {
            ps_row(ps, pid).is_some()
        })
        .await;
    let row = ps
        .lines()
        .find(|l| l.contains("slow and steady"))
        .unwrap_or("");
    assert!(
        seconds_left(row).is_some_and(|s| (500..=600).contains(&s)),
        "{ps}"
    );
    assert_eq!(k.sh(&format!("kill {pid}")).await.status, 0);
}

#[tokio::test]
async fn a_pipeline_stage_keeps_its_deadline() {
    let fake = FakeLlm::start(paced(20)).await;
    let k = TestKernel::start(&fake.url, &[]).await;
    let run = k
        .sh("query --max-tokens 3 'a short note' | query --deadline 300ms '[tokens=2000] expand it'")
        .await;
    assert_eq!(
        run.status, 152,
        "the last stage ends at its deadline: {run:?}"
    );
}
