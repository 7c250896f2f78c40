//! System calls through the HTTP front door: `X-LLMKernel-Syscalls: on` (or the body's
//! `syscalls`) makes the request's process call the kernel's tools; the client gets the answer's
//! text, the calls and results only as SSE comments, and a request that also brings its own tools
//! is refused.

use super::{requests_for, start};
use crate::http::client::{call, http_socket};
use crate::support::fake_llm::FakeConfig;
use crate::support::ps_row;
use serde_json::json;

/// A chat body asking `prompt`, with `extra` fields.
fn body(prompt: &str, extra: serde_json::Value) -> String {
    let mut body = json!({ "messages": [{ "role": "user", "content": prompt }] });
    if let (Some(map), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        map.extend(extra.clone());
    }
    body.to_string()
}

const SCRIPT: &str = r#"[tokens=2] plan <<call spawn {"prompt":"[tokens=3] research"}>> <<turn>> <<call wait {"pid":2}>>"#;

#[tokio::test]
async fn a_request_with_syscalls_has_its_calls_carried_out_and_gets_the_answers_text() {
    let (fake, k, _cfg) = start(FakeConfig::default(), "").await;
    let sock = http_socket(&k.socket);
    let headers = [("X-LLMKernel-Syscalls", "on"), ("X-LLMKernel-Detach", "1")];
    let reply = call(
        &sock,
        "POST",
        "/v1/chat/completions",
        &headers,
        &body(SCRIPT, json!({})),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let v = reply.json();
    let message = &v["choices"][0]["message"];
    // The model's text of its three answers (the fake says `t0 t1 ` before its calls too),
    // without the kernel's lines of calls and results.
    assert_eq!(message["content"], "t0 t1 t0 t1 t0 t1 ", "{v}");
    assert!(message.get("tool_calls").is_none(), "{v}");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    // The kernel carried out the calls: a child answered and its output went back to the model.
    let pid = reply.pid();
    let ps = k.sh("ps -l").await.stdout;
    let header: Vec<&str> = ps.lines().next().unwrap().split_whitespace().collect();
    let ppid = header.iter().position(|h| *h == "PPID").expect("PPID");
    let child = ps_row(&ps, 2).expect("the child");
    assert_eq!(child[ppid], pid.to_string(), "{ps}");
    let asked = requests_for(&fake, "[tokens=2] plan");
    assert_eq!(asked.len(), 3, "spawn, wait, the answer");
    let tools: Vec<&str> = asked[0].body["tools"]
        .as_array()
        .expect("the kernel's tools")
        .iter()
        .filter_map(|t| t["function"]["name"].as_str())
        .collect();
    assert_eq!(tools, ["spawn", "wait", "kill", "ps"]);
    assert!(asked[0].body.get("syscalls").is_none(), "{}", asked[0].body);
    assert!(asked[0].body.get("llmkernel_syscalls").is_none());
    let last = &asked[2].body["messages"];
    assert_eq!(last[4]["role"], "tool", "{last}");
    assert!(
        last[4]["content"]
            .as_str()
            .is_some_and(|c| c.contains("t0 t1 t2 ")),
        "the child's answer went back: {last}"
    );
    // `cat` (the output endpoint) shows the calls and their results.
    let uri = format!("/v1/processes/{pid}/output");
    let output = call(&sock, "GET", &uri, &[], "").await;
    assert!(
        output.body.contains("[tool call call_0_0] spawn("),
        "{}",
        output.body
    );
    assert!(
        output.body.contains("[tool result call_0_0]"),
        "{}",
        output.body
    );
}

#[tokio::test]
async fn a_streamed_answer_shows_calls_and_results_as_comments_and_required_asks_for_a_call() {
    let (fake, k, _cfg) = start(FakeConfig::default(), "").await;
    let sock = http_socket(&k.socket);
    let script = r#"[tokens=2] ask <<call ps {}>>"#;
    let extra = json!({ "stream": true, "syscalls": "required" });
    let reply = call(
        &sock,
        "POST",
        "/v1/chat/completions",
        &[],
        &body(script, extra),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.streamed_text(), "t0 t1 t0 t1 ", "{}", reply.body);
    let comments: Vec<&str> = reply
        .body
        .lines()
        .filter_map(|l| l.strip_prefix(':'))
        .map(str::trim)
        .collect();
    assert!(
        comments
            .iter()
            .any(|c| c.starts_with("[tool call call_0_0] ps(")),
        "{}",
        reply.body
    );
    assert!(
        comments
            .iter()
            .any(|c| c.starts_with("[tool result call_0_0] {\"children\"")),
        "{}",
        reply.body
    );
    let asked = requests_for(&fake, "[tokens=2] ask");
    assert_eq!(asked.len(), 2, "the call, then the answer");
    assert_eq!(asked[0].body["tool_choice"], "required");
    assert_eq!(asked[1].body["tool_choice"], "auto");
}

#[tokio::test]
async fn a_request_with_syscalls_and_its_own_tools_is_refused() {
    let (fake, k, _cfg) = start(FakeConfig::default(), "").await;
    let sock = http_socket(&k.socket);
    let tools = json!({ "tools": [{ "type": "function", "function": { "name": "get_weather" } }] });
    let headers = [("X-LLMKernel-Syscalls", "on")];
    let reply = call(
        &sock,
        "POST",
        "/v1/chat/completions",
        &headers,
        &body("hi", tools),
    )
    .await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    let message = reply.json()["error"]["message"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(message.contains("`tools` cannot be sent"), "{message}");
    let bad = [("X-LLMKernel-Syscalls", "maybe")];
    let reply = call(
        &sock,
        "POST",
        "/v1/chat/completions",
        &bad,
        &body("hi", json!({})),
    )
    .await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(fake.requests().is_empty(), "nothing reached the backend");
}
