//! The front door and the kernel's controls: a full queue, kill (never retried), nice and type from
//! the body and headers with the same privilege rule as `llmsh`, `/v1/processes`, and `llmsh`'s
//! follow-up questions and models.

use super::client::{Streaming, call, chat_body, http_socket};
use super::{door, wait_row};
use crate::support::fake_llm::{FakeConfig, FakeLlm, answer};
use crate::support::{STEP, TestKernel, config_file, job_pid};
use std::time::Duration;

#[tokio::test]
async fn a_full_run_queue_answers_429_with_retry_after() {
    let fake = FakeLlm::start(FakeConfig {
        delay: Duration::from_millis(20),
        ..Default::default()
    })
    .await;
    let (_cfg, path) = config_file("[limits]\nmax_queue = 1\n");
    let k = TestKernel::start(&fake.url, &["--config", &path]).await;
    let sock = http_socket(&k.socket);
    let first = k.sh("query \"[tokens=2000] one\" &").await;
    fake.wait_for("the first request", STEP, |f| f.requests().len() == 1)
        .await;
    let second = k.sh("query \"[tokens=2000] two\" &").await;
    assert_eq!(second.status, 0, "{second:?}");
    let reply = call(
        &sock,
        "POST",
        "/v1/chat/completions",
        &[],
        &chat_body("three", ""),
    )
    .await;
    assert_eq!(reply.status, 429, "{}", reply.body);
    assert!(reply.header("retry-after").is_some());
    assert_eq!(reply.json()["error"]["type"], "rate_limit_error");
    for run in [first, second] {
        k.sh(&format!("kill -9 {}", job_pid(&run.stdout))).await;
    }
}

#[tokio::test]
async fn a_killed_answer_ends_in_an_error_that_the_sdk_will_not_retry() {
    let (fake, k, sock) = door(FakeConfig {
        delay: Duration::from_millis(20),
        ..Default::default()
    })
    .await;
    let body = chat_body("[tokens=2000] streamed", r#""stream":true"#);
    let mut s = Streaming::open(&sock, "/v1/chat/completions", &[], &body).await;
    s.read_until("t1 ").await;
    let pid = s.pid().await;
    let killed = call(&sock, "DELETE", &format!("/v1/processes/{pid}"), &[], "").await;
    assert_eq!(killed.status, 200, "{}", killed.body);
    let reply = s.finish().await;
    let last = reply.events().last().cloned().unwrap_or_default();
    assert!(
        last.contains("\"error\"") && last.contains("killed"),
        "{last}"
    );
    // Not streamed: an error with x-should-retry: false.
    let body = chat_body("[tokens=2000] whole", "");
    let s = Streaming::open(&sock, "/v1/chat/completions", &[], &body).await;
    fake.wait_for("the second request's tokens", STEP, |f| {
        f.requests().len() == 2
    })
    .await;
    let list = call(&sock, "GET", "/v1/processes", &[], "").await.json();
    let pid = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["state"] != "Zombie")
        .map(|r| r["pid"].as_u64().unwrap())
        .expect("the running process");
    let kill = k.sh(&format!("kill -9 {pid}")).await;
    assert_eq!(kill.status, 0, "{kill:?}");
    let reply = s.finish().await;
    assert_eq!(reply.status, 409, "{}", reply.body);
    assert_eq!(reply.header("x-should-retry"), Some("false"));
    assert_eq!(reply.pid(), pid);
}

#[tokio::test]
async fn nice_and_type_come_from_the_headers_or_the_body_and_show_in_ps() {
    let (_fake, k, sock) = door(FakeConfig::default()).await;
    let headers = [
        ("X-LLMKernel-Nice", "5"),
        ("X-LLMKernel-Type", "housekeeping"),
        ("X-LLMKernel-Detach", "1"),
        ("User-Agent", "agent-x/2"),
    ];
    let reply = call(
        &sock,
        "POST",
        "/v1/chat/completions",
        &headers,
        &chat_body("a", ""),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let row = wait_row(&sock, reply.pid(), "the row", |r| !r.is_null()).await;
    assert_eq!(
        (row["nice"].as_i64(), row["process_type"].as_str()),
        (Some(5), Some("Housekeeping"))
    );
    assert_eq!(row["origin"], "http agent-x/2");
    let flex = chat_body("b", r#""priority":-3,"service_tier":"flex""#);
    let reply = call(
        &sock,
        "POST",
        "/v1/chat/completions",
        &[("X-LLMKernel-Detach", "1")],
        &flex,
    )
    .await;
    let row = wait_row(&sock, reply.pid(), "the row", |r| !r.is_null()).await;
    assert_eq!(
        (row["nice"].as_i64(), row["process_type"].as_str()),
        (Some(-3), Some("Housekeeping"))
    );
    let bad = call(
        &sock,
        "POST",
        "/v1/chat/completions",
        &[("X-LLMKernel-Type", "root")],
        &chat_body("c", ""),
    )
    .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    let ps = k.sh_wide("ps -l").await;
    assert!(ps.stdout.contains("<http agent-x/2>"), "{ps:?}");
}

#[tokio::test]
async fn processes_are_stopped_continued_and_reniced_over_http() {
    let (_fake, k, sock) = door(FakeConfig {
        delay: Duration::from_millis(20),
        ..Default::default()
    })
    .await;
    let run = k.sh("query \"[tokens=2000] long\" &").await;
    let pid = job_pid(&run.stdout);
    let stop = call(
        &sock,
        "POST",
        &format!("/v1/processes/{pid}/signal"),
        &[],
        r#"{"signal":"STOP"}"#,
    )
    .await;
    assert_eq!(stop.status, 200, "{}", stop.body);
    assert_eq!(stop.json()["state"], "Stopped");
    let renice = call(
        &sock,
        "POST",
        &format!("/v1/processes/{pid}/renice"),
        &[],
        r#"{"nice":7}"#,
    )
    .await;
    assert_eq!(renice.json()["new_nice"], 7);
    let bad = call(
        &sock,
        "POST",
        &format!("/v1/processes/{pid}/signal"),
        &[],
        r#"{"signal":"NOPE"}"#,
    )
    .await;
    assert_eq!(bad.status, 400);
    let missing = call(&sock, "GET", "/v1/processes/999", &[], "").await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        call(&sock, "DELETE", &format!("/v1/processes/{pid}"), &[], "")
            .await
            .status,
        200
    );
    let health = call(&sock, "GET", "/health", &[], "").await;
    assert_eq!(health.json()["status"], "ok");
    let models = call(&sock, "GET", "/v1/models", &[], "").await;
    assert_eq!(models.json()["data"][0]["id"], "fake-model");
}

#[tokio::test]
async fn llmsh_asks_a_follow_up_in_a_finished_conversation_and_for_another_model() {
    let fake = FakeLlm::start(FakeConfig {
        tokens: 3,
        ..Default::default()
    })
    .await;
    let k = TestKernel::start(&fake.url, &[]).await;
    let first = k
        .sh("query --model small-model --system \"be brief\" first question &")
        .await;
    let pid = job_pid(&first.stdout);
    k.eventually(&format!("cat {pid}"), "the first answer", |o| {
        o.contains(&answer(3))
    })
    .await;
    let second = k.sh(&format!("query --continue {pid} and then")).await;
    assert_eq!(second.status, 0, "{second:?}");
    assert_eq!(second.stdout, format!("{}\n", answer(3)));
    let requests = fake.requests();
    assert_eq!(requests[0].body["model"], "small-model");
    let follow_up = &requests[1];
    assert_eq!(
        follow_up.body["model"], "small-model",
        "the model carries over"
    );
    let roles: Vec<(String, String)> = follow_up.messages();
    assert_eq!(
        roles,
        [
            ("system".to_string(), "be brief".to_string()),
            ("user".into(), "first question".into()),
            ("assistant".into(), answer(3)),
            ("user".into(), "and then".into()),
        ]
    );
}

#[tokio::test]
async fn a_queued_request_keeps_its_conversation_model_and_parameters_across_a_crash() {
    let (fake, k, sock) = door(FakeConfig {
        delay: Duration::from_millis(20),
        ..Default::default()
    })
    .await;
    // SYSTEM outranks the request, which waits in the queue until the crash.
    let busy = k
        .sh("query --type system \"[tokens=5000] hold the slot\" &")
        .await;
    fake.wait_for("the first request", STEP, |f| f.requests().len() == 1)
        .await;
    let body = r#"{"model":"kept-model","temperature":0.7,"stream":true,"messages":[
        {"role":"system","content":"sys"},{"role":"user","content":"[tokens=3] q1"},
        {"role":"assistant","content":"a1"},{"role":"user","content":"q2"}]}"#;
    let mut s = Streaming::open(
        &sock,
        "/v1/chat/completions",
        &[("X-LLMKernel-Detach", "1")],
        body,
    )
    .await;
    let waiting = wait_row(&sock, 2, "the request queued", |r| r["state"] == "Waiting").await;
    assert_eq!(
        waiting["origin"].as_str().map(|o| o.starts_with("http")),
        Some(true)
    );
    // The headers come once the creation is durable; then the client leaves (detached, it stays).
    assert_eq!(s.pid().await, 2);
    drop(s);
    let dir = k.crash().await;
    assert!(
        fake.requests()
            .iter()
            .all(|r| r.body["model"] != "kept-model"),
        "it had not run before the crash"
    );
    let k = TestKernel::start_in(dir, &fake.url, &[]).await;
    k.sh(&format!("kill -9 {}", job_pid(&busy.stdout))).await;
    let sock = http_socket(&k.socket);
    wait_row(&sock, 2, "the restored request to finish", |r| {
        r["exit"] == "Finished"
    })
    .await;
    let asked: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.body["model"] == "kept-model")
        .collect();
    assert_eq!(asked.len(), 1, "it ran once, after the crash");
    let sent = &asked[0].body;
    assert_eq!(sent["temperature"], 0.7);
    let roles: Vec<&str> = sent["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["role"].as_str())
        .collect();
    assert_eq!(roles, ["system", "user", "assistant", "user"]);
}
