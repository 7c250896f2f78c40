//! The structured parts of the fake's answers, for requests that ask for them: with `n` > 1 every
//! token goes to each choice (choice `c` says `c{c}t{i}`, choice 0 plain `t{i}`); with `logprobs`
//! each token carries a log-probability entry; with `tools` choice 0 ends by calling the first tool,
//! `{"city": "Paris"}` in two argument fragments, and finishes with `tool_calls`.

use serde_json::{Value, json};

/// What a request asks of the fake's answer beyond its tokens.
pub(super) struct Shape {
    pub(super) choices: u64,
    pub(super) logprobs: bool,
    /// The tool to call, if the request offers any.
    pub(super) tool: Option<String>,
}

impl Shape {
    pub(super) fn of(body: &Value) -> Shape {
        Shape {
            choices: body["n"].as_u64().unwrap_or(1).clamp(1, 8),
            logprobs: body["logprobs"].as_bool() == Some(true),
            tool: body["tools"][0]["function"]["name"]
                .as_str()
                .map(str::to_string),
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
        let Some(name) = &self.tool else {
            return Vec::new();
        };
        let call = |part: Value| json!({ "object": "chat.completion.chunk", "choices": [{ "index": 0, "delta": { "tool_calls": [part] } }] });
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
                let reason = if c == 0 && self.tool.is_some() && reason == "stop" {
                    "tool_calls"
                } else {
                    reason
                };
                json!({ "index": c, "delta": {}, "finish_reason": reason })
            })
            .collect()
    }
}
