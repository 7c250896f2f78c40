//! The structured parts of the fake's answers, for requests that ask for them: with `n` > 1 every
//! token goes to each choice (choice `c` says `c{c}t{i}`, choice 0 plain `t{i}`); with `logprobs`
//! each token carries a log-probability entry; with `tools` choice 0 ends by calling the first tool,
//! `{"city": "Paris"}` in two argument fragments, and finishes with `tool_calls`. A request offered
//! the kernel's system calls (a tool named `spawn`) follows the script in its first user message
//! instead: `<<call NAME ARGS>>` calls NAME with ARGS, `<<turn>>` separates the answers, and the
//! answer after as many assistant messages as the conversation holds makes that turn's calls (none
//! past the script: a plain answer).

use serde_json::{Value, json};

/// What a request asks of the fake's answer beyond its tokens.
pub(super) struct Shape {
    pub(super) choices: u64,
    pub(super) logprobs: bool,
    /// The tool to call, if the request offers any.
    pub(super) tool: Option<String>,
    /// The scripted system calls of this turn: (name, arguments).
    pub(super) calls: Vec<(String, String)>,
}

impl Shape {
    pub(super) fn of(body: &Value) -> Shape {
        let tool = body["tools"][0]["function"]["name"]
            .as_str()
            .map(str::to_string);
        let syscalls = tool.as_deref() == Some("spawn");
        Shape {
            choices: body["n"].as_u64().unwrap_or(1).clamp(1, 8),
            logprobs: body["logprobs"].as_bool() == Some(true),
            tool: tool.filter(|_| !syscalls),
            calls: if syscalls {
                scripted_calls(body)
            } else {
                Vec::new()
            },
        }
    }

    /// The chunk of token `text` for every choice.
    pub(super) fn token_chunk(&self, text: &str) -> Value {
        let choices: Vec<Value> = (0..self.choices)
            .map(|c| {
                let text = if c == 0 {
                    text.to_string()
                } else {
                    format!("c{c}{text}")
                };
                let mut choice = json!({ "index": c, "delta": { "content": text } });
                if self.logprobs {
                    choice["logprobs"] =
                        json!({ "content": [{ "token": text, "logprob": -0.25, "bytes": null, "top_logprobs": [] }] });
                }
                choice
            })
            .collect();
        json!({ "object": "chat.completion.chunk", "choices": choices })
    }

    /// The tool call's chunks (none without tools): its id and name, then its arguments in two.
    pub(super) fn tool_chunks(&self, request: usize) -> Vec<Value> {
        let call = |part: Value| json!({ "object": "chat.completion.chunk", "choices": [{ "index": 0, "delta": { "tool_calls": [part] } }] });
        if !self.calls.is_empty() {
            return self
                .calls
                .iter()
                .enumerate()
                .map(|(i, (name, args))| {
                    call(
                        json!({ "index": i, "id": format!("call_{request}_{i}"), "type": "function",
                        "function": { "name": name, "arguments": args } }),
                    )
                })
                .collect();
        }
        let Some(name) = &self.tool else {
            return Vec::new();
        };
        vec![
            call(
                json!({ "index": 0, "id": format!("call_{request}"), "type": "function", "function": { "name": name, "arguments": "" } }),
            ),
            call(json!({ "index": 0, "function": { "arguments": "{\"city\": " } })),
            call(json!({ "index": 0, "function": { "arguments": "\"Paris\"}" } })),
        ]
    }

    /// The last chunk's choices, each with its finish reason.
    pub(super) fn finish(&self, reason: &str) -> Vec<Value> {
        (0..self.choices)
            .map(|c| {
                let calls = self.tool.is_some() || !self.calls.is_empty();
                let reason = if c == 0 && calls && reason == "stop" {
                    "tool_calls"
                } else {
                    reason
                };
                json!({ "index": c, "delta": {}, "finish_reason": reason })
            })
            .collect()
    }
}

/// The calls the script in the first user message makes at this turn (see the module's docs).
fn scripted_calls(body: &Value) -> Vec<(String, String)> {
    let Some(messages) = body["messages"].as_array() else {
        return Vec::new();
    };
    let turn = messages.iter().filter(|m| m["role"] == "assistant").count();
    let Some(script) = messages
        .iter()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str())
    else {
        return Vec::new();
    };
    let Some(segment) = script.split("<<turn>>").nth(turn) else {
        return Vec::new();
    };
    segment
        .split("<<call ")
        .skip(1)
        .filter_map(|rest| {
            let call = rest.split(">>").next()?.trim();
            let (name, args) = call.split_once(' ').unwrap_or((call, ""));
            Some((name.to_string(), args.trim().to_string()))
        })
        .collect()
}
