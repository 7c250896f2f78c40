//! The OpenAI-compatible front door against the real kernel and the fake server: whole and streamed
//! answers, one unbroken answer across preemptions, a client that leaves (killed) or detaches, the
//! queue limit, kill, the priority and type fields, and TCP with and without keys.

mod activated;
pub(crate) mod client;
mod clients;
mod control;
mod structured;
mod tcp;

use crate::support::fake_llm::{FakeConfig, FakeLlm, answer};
use crate::support::{STEP, TestKernel};
use client::{Streaming, call, chat_body, http_socket};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A fake server with `config`, a kernel in front of it, and the kernel's HTTP socket.
pub async fn door(config: FakeConfig) -> (FakeLlm, TestKernel, PathBuf) {
    let fake = FakeLlm::start(config).await;
    let k = TestKernel::start(&fake.url, &[]).await;
    let sock = http_socket(&k.socket);
    (fake, k, sock)
}

/// Polls `GET /v1/processes/{pid}` until `cond` holds of the row.
pub async fn wait_row(socket: &Path, pid: u64, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let reply = call(socket, "GET", &format!("/v1/processes/{pid}"), &[], "").await;
        let row = if reply.status == 200 {
            reply.json()
        } else {
            Value::Null
        };
        if cond(&row) {
            return row;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; last: {}",
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn a_whole_answer_comes_with_usage_and_the_request_parameters_reach_the_backend() {
    let (fake, _k, sock) = door(FakeConfig::default()).await;
    let body = chat_body(
        "hello",
        r#""model":"other-model","temperature":0.25,"stop":["zz"],"priority":2,"service_tier":"flex","max_tokens":50"#,
    );
    let reply = call(
        &sock,
        "POST",
        "/v1/chat/completions",
        &[("User-Agent", "test-agent/1")],
        &body,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let v = reply.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["content"], answer(10));
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["completion_tokens"], 10);
    assert!(reply.pid() > 0);
    let sent = &fake.requests()[0].body;
    assert_eq!(sent["model"], "other-model");
    assert_eq!(sent["temperature"], 0.25);
    assert_eq!(sent["stop"], serde_json::json!(["zz"]));
    assert_eq!(sent["max_tokens"], 50);
    assert!(
        sent.get("priority").is_none() && sent.get("service_tier").is_none(),
        "{sent}"
    );
    let text = call(&sock, "POST", "/v1/completions", &[], r#"{"prompt":"say"}"#).await;
    assert_eq!(text.status, 200, "{}", text.body);
    assert_eq!(text.json()["choices"][0]["text"], answer(10));
    assert_eq!(fake.requests()[1].user_prompt(), "say");
}

#[tokio::test]
async fn a_streamed_answer_is_one_stream_with_one_id_its_usage_and_done() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let k = TestKernel::start(&fake.url, &[]).await;
    let body = chat_body(
        "hi",
        r#""stream":true,"stream_options":{"include_usage":true}"#,
    );
    let reply = call(
        &http_socket(&k.socket),
        "POST",
        "/v1/chat/completions",
        &[],
        &body,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        reply
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/event-stream"))
    );
    assert!(reply.pid() > 0);
    assert_eq!(reply.streamed_text(), answer(10));
    let events = reply.events();
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events
        .iter()
        .filter_map(|e| serde_json::from_str(e).ok())
        .collect();
    let ids: std::collections::HashSet<_> = chunks.iter().map(|c| c["id"].to_string()).collect();
    assert_eq!(ids.len(), 1, "one id: {ids:?}");
    let usage = chunks
        .iter()
        .find(|c| !c["usage"].is_null())
        .expect("a usage chunk");
    assert_eq!(usage["usage"]["completion_tokens"], 10);
    assert!(
        chunks
            .iter()
            .any(|c| c["choices"][0]["finish_reason"] == "stop")
    );
}

#[tokio::test]
async fn an_answer_preempted_mid_way_reaches_the_client_unbroken_and_unrepeated() {
    let fake = FakeLlm::start(FakeConfig {
        echo_prefix: true,
        delay: Duration::from_millis(15),
        ..Default::default()
    })
    .await;
    let k = TestKernel::start(&fake.url, &["--quantum", "4"]).await;
    let body = chat_body("[tokens=40] long one", r#""stream":true"#);
    let mut stream =
        Streaming::open(&http_socket(&k.socket), "/v1/chat/completions", &[], &body).await;
    stream.read_until("t3 ").await;
    // A SYSTEM query from the kernel's own user outranks the HTTP process and takes its slot.
    let run = k.sh("query --type system \"[tokens=6] urgent\"").await;
    assert_eq!(run.status, 0, "{run:?}");
    let reply = stream.finish().await;
    assert_eq!(reply.streamed_text(), answer(40));
    assert!(reply.body.contains(": preempted"), "{}", reply.body);
    assert!(
        fake.requests().iter().any(|r| r.resumed_at() > 0),
        "it was continued"
    );
}

#[tokio::test]
async fn a_client_that_leaves_kills_its_process_streaming_or_not() {
    let (fake, _k, sock) = door(FakeConfig {
        delay: Duration::from_millis(20),
        ..Default::default()
    })
    .await;
    for (n, stream) in [(1, true), (2, false)] {
        let body = chat_body("[tokens=2000] go on", &format!(r#""stream":{stream}"#));
        let mut s = Streaming::open(&sock, "/v1/chat/completions", &[], &body).await;
        fake.wait_for("the request", STEP, |f| f.requests().len() >= n)
            .await;
        if stream {
            s.read_until("t2 ").await;
        } else {
            // Tokens of this request: its backend stream is under way, so dropping it is counted.
            // (The fake does not announce single tokens: look until one is there.)
            let deadline = tokio::time::Instant::now() + STEP;
            while !fake.token_log().iter().any(|(r, _)| *r == n - 1) {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no tokens for request {n}"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        drop(s);
        let what = format!("the backend stream to be dropped (stream: {stream})");
        fake.wait_for(&what, STEP, |f| f.disconnects() >= n).await;
    }
    let list = call(&sock, "GET", "/v1/processes", &[], "").await.json();
    let rows = list["data"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 2, "{list}");
    for row in rows {
        assert!(row["exit"].to_string().contains("Killed"), "{row}");
    }
}

#[tokio::test]
async fn a_client_that_leaves_while_queued_kills_its_waiting_process() {
    let (fake, k, sock) = door(FakeConfig {
        delay: Duration::from_millis(20),
        ..Default::default()
    })
    .await;
    let busy = k.sh("query \"[tokens=2000] hold the slot\" &").await;
    let busy_pid = crate::support::job_pid(&busy.stdout);
    fake.wait_for("the first request", STEP, |f| f.requests().len() == 1)
        .await;
    let mut s = Streaming::open(
        &sock,
        "/v1/chat/completions",
        &[],
        &chat_body("wait", r#""stream":true"#),
    )
    .await;
    s.read_until(": queued position=1").await;
    let pid = s.pid().await;
    drop(s);
    let row = wait_row(&sock, pid, "the queued process killed", |r| {
        r["exit"].to_string().contains("Killed")
    })
    .await;
    assert_eq!(row["tokens_used"], 0);
    k.sh(&format!("kill -9 {busy_pid}")).await;
    assert_eq!(fake.requests().len(), 1, "the killed one never ran");
}

#[tokio::test]
async fn a_client_that_leaves_during_prompt_processing_kills_its_process() {
    // Every prompt word costs the fake a second: the answer's first token is far away.
    let (_fake, _k, sock) = door(FakeConfig {
        prefill: Duration::from_secs(1),
        ..Default::default()
    })
    .await;
    for stream in [true, false] {
        let body = chat_body("a long prompt to read", &format!(r#""stream":{stream}"#));
        let mut s = Streaming::open(&sock, "/v1/chat/completions", &[], &body).await;
        let pid = if stream {
            s.pid().await
        } else {
            let list =
                wait_row_list(&sock, |rows| rows.iter().any(|r| r["state"] == "Running")).await;
            list.iter()
                .find(|r| r["state"] == "Running")
                .and_then(|r| r["pid"].as_u64())
                .unwrap()
        };
        wait_row(&sock, pid, "it to run", |r| r["state"] == "Running").await;
        drop(s);
        let row = wait_row(&sock, pid, "it killed", |r| {
            r["exit"].to_string().contains("Killed")
        })
        .await;
        assert_eq!(row["tokens_used"], 0, "killed before its first token");
    }
}

/// Polls `GET /v1/processes` until `cond` holds of its rows.
async fn wait_row_list(socket: &Path, cond: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let rows = call(socket, "GET", "/v1/processes", &[], "").await.json()["data"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if cond(&rows) {
            return rows;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out; last: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn a_detached_request_goes_on_when_its_client_leaves() {
    let (_fake, k, sock) = door(FakeConfig {
        delay: Duration::from_millis(10),
        ..Default::default()
    })
    .await;
    let body = chat_body("[tokens=30] keep going", r#""stream":true"#);
    let mut s = Streaming::open(
        &sock,
        "/v1/chat/completions",
        &[("X-LLMKernel-Detach", "1")],
        &body,
    )
    .await;
    s.read_until("t1 ").await;
    let pid = s.pid().await;
    drop(s);
    wait_row(&sock, pid, "the detached process to finish", |r| {
        r["exit"] == "Finished"
    })
    .await;
    let output = call(
        &sock,
        "GET",
        &format!("/v1/processes/{pid}/output"),
        &[],
        "",
    )
    .await;
    assert_eq!(output.body, answer(30));
    let cat = k.sh(&format!("cat {pid}")).await;
    assert!(cat.stdout.contains(&answer(30)), "{cat:?}");
}

#[tokio::test]
async fn a_request_with_tools_is_never_switched_out_at_a_quantum_boundary() {
    let fake = FakeLlm::start(FakeConfig {
        delay: Duration::from_millis(10),
        ..Default::default()
    })
    .await;
    let k = TestKernel::start(&fake.url, &["--quantum", "4"]).await;
    let body = chat_body(
        "[tokens=30] call a tool",
        r#""stream":true,"tools":[{"type":"function","function":{"name":"f","parameters":{}}}]"#,
    );
    let mut stream =
        Streaming::open(&http_socket(&k.socket), "/v1/chat/completions", &[], &body).await;
    stream.read_until("t3 ").await;
    let run = k.sh("query --type system \"[tokens=4] urgent\"").await;
    assert_eq!(run.status, 0, "{run:?}");
    let reply = stream.finish().await;
    assert_eq!(reply.streamed_text(), answer(30));
    let requests = fake.requests();
    assert_eq!(
        requests[0].body["tools"][0]["function"]["name"], "f",
        "tools reach the backend"
    );
    assert!(
        requests.iter().all(|r| r.resumed_at() == 0),
        "never continued"
    );
    let log = fake.token_log();
    let last_of_first = log.iter().rposition(|(r, _)| *r == 0).unwrap();
    let first_of_second = log.iter().position(|(r, _)| *r == 1).unwrap();
    assert!(
        last_of_first < first_of_second,
        "the SYSTEM query waited for the whole answer"
    );
}
