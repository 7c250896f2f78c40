//! Answers with structured parts through the front door: a tool call (streamed as OpenAI's deltas,
//! assembled in a whole answer, written into the output `cat` shows, and its result sent back to
//! the backend in the next request), and several choices with log-probabilities.

use super::client::{Reply, call};
use super::door;
use crate::support::fake_llm::{FakeConfig, answer};
use serde_json::{Value, json};

const TOOLS: &str = r#""tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]"#;

fn chat(messages: Value, extra: &str) -> String {
    format!(r#"{{"messages":{messages},{extra}}}"#)
}

/// The JSON chunks of a streamed reply.
fn chunks(reply: &Reply) -> Vec<Value> {
    reply
        .events()
        .iter()
        .filter_map(|e| serde_json::from_str(e).ok())
        .collect()
}

#[tokio::test]
async fn a_tool_call_is_returned_assembled_shown_by_cat_and_its_result_reaches_the_backend() {
    let (fake, k, sock) = door(FakeConfig::default()).await;
    let asked = json!([{ "role": "user", "content": "[tokens=0] weather in Paris?" }]);
    let detach = [("X-LLMKernel-Detach", "1")];
    let reply = call(
        &sock,
        "POST",
        "/v1/chat/completions",
        &detach,
        &chat(asked, TOOLS),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let choice = &reply.json()["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls", "{choice}");
    let message = &choice["message"];
    assert_eq!(message["content"], Value::Null, "{message}");
    let call_0 = json!({ "id": "call_0", "type": "function", "function": { "name": "get_weather", "arguments": "{\"city\": \"Paris\"}" } });
    assert_eq!(message["tool_calls"], json!([call_0.clone()]));

    let line = r#"[tool call call_0] get_weather({"city": "Paris"})"#;
    let pid = reply.pid();
    let output = call(
        &sock,
        "GET",
        &format!("/v1/processes/{pid}/output"),
        &[],
        "",
    )
    .await;
    assert!(output.body.contains(line), "{}", output.body);
    let cat = k.sh(&format!("cat {pid}")).await;
    assert!(cat.stdout.contains(line), "{cat:?}");

    let round_trip = json!([
        { "role": "user", "content": "weather in Paris?" },
        { "role": "assistant", "content": null, "tool_calls": [call_0] },
        { "role": "tool", "tool_call_id": "call_0", "content": "sunny" },
    ]);
    let reply = call(
        &sock,
        "POST",
        "/v1/chat/completions",
        &[],
        &chat(round_trip, r#""max_tokens":3"#),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["choices"][0]["message"]["content"], answer(3));
    let sent = &fake.requests()[1].body["messages"];
    assert_eq!(sent[1]["tool_calls"][0]["id"], "call_0", "{sent}");
    assert_eq!(sent[1]["content"], Value::Null, "{sent}");
    assert_eq!(sent[2]["tool_call_id"], "call_0", "{sent}");
    assert_eq!(sent[2]["content"], "sunny", "{sent}");
}

#[tokio::test]
async fn a_streamed_tool_call_comes_as_openai_deltas_after_the_text() {
    let (_fake, _k, sock) = door(FakeConfig::default()).await;
    let asked = json!([{ "role": "user", "content": "[tokens=2] weather?" }]);
    let body = chat(asked, &format!(r#"{TOOLS},"stream":true"#));
    let reply = call(&sock, "POST", "/v1/chat/completions", &[], &body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.streamed_text(), answer(2));
    let chunks = chunks(&reply);
    let calls: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| {
            c["choices"][0]["delta"]["tool_calls"][0]
                .as_object()
                .map(|_| &c["choices"][0]["delta"]["tool_calls"][0])
        })
        .collect();
    assert_eq!(calls.len(), 3, "{}", reply.body);
    assert_eq!(calls[0]["id"], "call_0");
    assert_eq!(calls[0]["type"], "function");
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    assert!(calls.iter().all(|c| c["index"] == 0));
    let arguments: String = calls
        .iter()
        .filter_map(|c| c["function"]["arguments"].as_str())
        .collect();
    assert_eq!(arguments, r#"{"city": "Paris"}"#);
    let finishes: Vec<&Value> = chunks
        .iter()
        .map(|c| &c["choices"][0]["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finishes, vec![&json!("tool_calls")], "{}", reply.body);
    assert_eq!(reply.events().last().map(String::as_str), Some("[DONE]"));
}

#[tokio::test]
async fn several_choices_with_logprobs_reach_the_client_streamed_and_whole() {
    let (_fake, _k, sock) = door(FakeConfig::default()).await;
    let asked = json!([{ "role": "user", "content": "[tokens=3] two ways" }]);
    let extra = r#""n":2,"logprobs":true"#;
    let reply = call(
        &sock,
        "POST",
        "/v1/chat/completions",
        &[],
        &chat(asked.clone(), extra),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let v = reply.json();
    let choices = v["choices"].as_array().expect("choices");
    assert_eq!(choices.len(), 2, "{v}");
    assert_eq!(choices[0]["message"]["content"], answer(3));
    assert_eq!(choices[1]["index"], 1);
    assert_eq!(choices[1]["message"]["content"], "c1t0 c1t1 c1t2 ");
    assert_eq!(choices[1]["finish_reason"], "stop");
    let logprobs = choices[0]["logprobs"]["content"]
        .as_array()
        .expect("logprobs");
    assert_eq!(logprobs.len(), 3, "{v}");
    assert_eq!(logprobs[0]["token"], "t0 ");

    let reply = call(
        &sock,
        "POST",
        "/v1/chat/completions",
        &[],
        &chat(asked, &format!(r#"{extra},"stream":true"#)),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let mut texts = [String::new(), String::new()];
    let mut finished = [0, 0];
    for chunk in chunks(&reply) {
        for choice in chunk["choices"].as_array().into_iter().flatten() {
            let at = choice["index"].as_u64().expect("an index") as usize;
            texts[at].push_str(choice["delta"]["content"].as_str().unwrap_or(""));
            finished[at] += usize::from(choice["finish_reason"] == "stop");
            if choice["delta"]["content"]
                .as_str()
                .is_some_and(|c| !c.is_empty())
            {
                assert!(choice["logprobs"]["content"].is_array(), "{choice}");
            }
        }
    }
    assert_eq!(texts, [answer(3), "c1t0 c1t1 c1t2 ".to_string()]);
    assert_eq!(finished, [1, 1], "{}", reply.body);
}

#[tokio::test]
async fn a_tool_calls_parts_count_against_the_allowance() {
    let (_fake, _k, sock) = door(FakeConfig::default()).await;
    // Three parts of a tool call (its name, then two argument fragments) for an allowance of two.
    let asked = json!([{ "role": "user", "content": "[tokens=0] weather?" }]);
    let body = chat(asked, &format!(r#"{TOOLS},"max_tokens":2"#));
    let reply = call(&sock, "POST", "/v1/chat/completions", &[], &body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let v = reply.json();
    assert_eq!(v["choices"][0]["finish_reason"], "length", "{v}");
    assert_eq!(v["usage"]["completion_tokens"], 2, "{v}");
    let call_0 = &v["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call_0["function"]["arguments"], "{\"city\": ", "{v}");
}
