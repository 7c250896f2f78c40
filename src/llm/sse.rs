//! The chunks of an OpenAI-compatible chat-completions stream. Servers differ in what else they put
//! in a chunk (llama.cpp adds `timings`, Ollama its own fields), so everything but the few fields we
//! read is ignored, and a chunk without choices (a usage-only or keep-alive chunk) is fine.

use super::choice::{ChoiceDelta, ToolCallDelta};
use serde::Deserialize;
use serde_json::Value;

/// What one server-sent event means to the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// New text of the answer (one token on most servers).
    Text(String),
    /// The server's own count of tokens, usually in the last chunk.
    Usage {
        prompt_tokens: u32,
        completion_tokens: u32,
    },
    /// The server says the answer is complete; `length` means it stopped at `max_tokens` (or, before
    /// that, at the end of the slot's context).
    Finished { reason: String },
    /// Prompt tokens the server found in the slot's cache (llama-server's `timings.cache_n`).
    Cached { tokens: u32 },
    /// What one chunk says about one choice, whole (several choices, tool calls, log-probabilities):
    /// only from [`parse_structured`], which gives these instead of `Text` and `Finished`.
    Choice(ChoiceDelta),
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<serde_json::Value>,
    #[serde(default)]
    timings: Option<Timings>,
}

#[derive(Deserialize)]
struct Timings {
    #[serde(default)]
    cache_n: Option<u32>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    index: Option<u32>,
    #[serde(default)]
    delta: Option<Delta>,
    /// A whole (not streamed) answer's text, from a server that answered with one JSON completion.
    #[serde(default)]
    message: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
    /// Read leniently (a value, not a typed field): a server's odd logprobs never break a stream.
    #[serde(default)]
    logprobs: Option<Value>,
}

#[derive(Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    /// Read leniently, as a value: only a structured stream looks at it.
    #[serde(default)]
    tool_calls: Option<Value>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: u32,
    #[serde(default)]
    completion_tokens: u32,
}

/// Parses one event's data. `Ok(vec![])` for events that carry nothing for us; `Err` with a short
/// description for data that is not a chunk at all, or an error the server reports mid-stream.
pub fn parse_chunk(data: &str) -> Result<Vec<StreamEvent>, ChunkError> {
    parse(data, false)
}

/// Parses one event's data for a request whose answer has structured parts: each choice becomes a
/// [`StreamEvent::Choice`] (its text, tool-call deltas, log-probabilities and finish reason together);
/// choice 0's finish reason is also a `Finished`. Usage and cache counts as [`parse_chunk`] gives them.
pub fn parse_structured(data: &str) -> Result<Vec<StreamEvent>, ChunkError> {
    parse(data, true)
}

fn parse(data: &str, structured: bool) -> Result<Vec<StreamEvent>, ChunkError> {
    let chunk: Chunk = serde_json::from_str(data)
        .map_err(|e| ChunkError::Malformed(format!("{e} in {:.80}", data)))?;
    if let Some(err) = chunk.error {
        let message = err
            .get("message")
            .and_then(|m| m.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| err.to_string());
        return Err(ChunkError::Reported(message));
    }
    let mut events = Vec::new();
    for choice in chunk.choices {
        if structured {
            events.extend(structured_events(choice));
            continue;
        }
        if choice.index.is_some_and(|i| i != 0) {
            continue; // another choice's text is not this answer's
        }
        if let Some(text) = choice
            .delta
            .or(choice.message)
            .and_then(|d| d.content)
            .filter(|t| !t.is_empty())
        {
            events.push(StreamEvent::Text(text));
        }
        if let Some(reason) = choice.finish_reason {
            events.push(StreamEvent::Finished { reason });
        }
    }
    if let Some(tokens) = chunk.timings.and_then(|t| t.cache_n) {
        events.push(StreamEvent::Cached { tokens });
    }
    if let Some(u) = chunk.usage {
        events.push(StreamEvent::Usage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
        });
    }
    Ok(events)
}

/// One choice of a structured stream: its delta (if it carries anything), and its finish reason
/// as a `Finished` too when it is choice 0's.
fn structured_events(choice: Choice) -> Vec<StreamEvent> {
    let index = choice.index.unwrap_or(0);
    let delta = choice.delta.or(choice.message);
    let (content, calls) = match delta {
        Some(d) => (d.content, d.tool_calls),
        None => (None, None),
    };
    let delta = ChoiceDelta {
        index,
        content,
        tool_calls: tool_call_deltas(calls.as_ref()),
        logprobs: choice.logprobs.filter(|l| !l.is_null()),
        finish_reason: choice.finish_reason.clone(),
    };
    let mut events = Vec::new();
    if !delta.is_empty() {
        events.push(StreamEvent::Choice(delta));
    }
    if let Some(reason) = choice.finish_reason.filter(|_| index == 0) {
        events.push(StreamEvent::Finished { reason });
    }
    events
}

/// The tool-call deltas of `calls` (a `tool_calls` array); entries that are not objects are skipped.
fn tool_call_deltas(calls: Option<&Value>) -> Vec<ToolCallDelta> {
    let Some(Value::Array(calls)) = calls else {
        return Vec::new();
    };
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
    calls
        .iter()
        .filter(|c| c.is_object())
        .enumerate()
        .map(|(at, call)| {
            let function = call.get("function").unwrap_or(&Value::Null);
            // A whole answer's calls often have no index: their place in the array is it.
            let index = call.get("index").and_then(Value::as_u64);
            ToolCallDelta {
                index: index.map_or(at as u32, |i| u32::try_from(i).unwrap_or(u32::MAX)),
                id: text(call, "id"),
                name: text(function, "name"),
                arguments: text(function, "arguments"),
            }
        })
        .collect()
}

/// A chunk that could not be used.
#[derive(Debug, PartialEq, Eq)]
pub enum ChunkError {
    Malformed(String),
    Reported(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_delta_becomes_text() {
        let got = parse_chunk(r#"{"choices":[{"index":0,"delta":{"content":"Hi"}}]}"#).unwrap();
        assert_eq!(got, vec![StreamEvent::Text("Hi".into())]);
    }

    #[test]
    fn unknown_fields_and_role_only_deltas_are_ignored() {
        let got = parse_chunk(
            r#"{"id":"x","object":"chat.completion.chunk","timings":{"n":1},"choices":[{"delta":{"role":"assistant"},"logprobs":null}]}"#,
        )
        .unwrap();
        assert!(got.is_empty());
    }

    #[test]
    fn last_chunk_carries_finish_reason_and_usage() {
        let got = parse_chunk(
            r#"{"choices":[{"delta":{},"finish_reason":"length"}],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}"#,
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                StreamEvent::Finished {
                    reason: "length".into()
                },
                StreamEvent::Usage {
                    prompt_tokens: 7,
                    completion_tokens: 3
                }
            ]
        );
    }

    #[test]
    fn llama_servers_timings_say_how_much_of_the_prompt_was_cached() {
        let got = parse_chunk(
            r#"{"choices":[{"delta":{},"finish_reason":"stop"}],"timings":{"cache_n":120,"prompt_n":3}}"#,
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                StreamEvent::Finished {
                    reason: "stop".into()
                },
                StreamEvent::Cached { tokens: 120 }
            ]
        );
    }

    #[test]
    fn a_whole_completion_reads_like_its_stream() {
        let got = parse_chunk(
            r#"{"choices":[{"message":{"role":"assistant","content":"t0 t1 "},"finish_reason":"stop"}]}"#,
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                StreamEvent::Text("t0 t1 ".into()),
                StreamEvent::Finished {
                    reason: "stop".into()
                }
            ]
        );
    }

    #[test]
    fn another_choices_text_is_not_the_answers_text() {
        let got = parse_chunk(r#"{"choices":[{"index":1,"delta":{"content":"B"}},{"index":0,"delta":{"content":"A"}}]}"#)
            .unwrap();
        assert_eq!(got, vec![StreamEvent::Text("A".into())]);
    }

    #[test]
    fn a_structured_chunk_keeps_tool_calls_logprobs_and_choice_indices() {
        let got = parse_structured(
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\""}}]},"logprobs":null},{"index":1,"delta":{"content":"x"},"logprobs":{"content":[{"token":"x","logprob":-0.5}]},"finish_reason":"stop"}]}"#,
        )
        .unwrap();
        let call = ToolCallDelta {
            index: 0,
            id: Some("call_1".into()),
            name: Some("f".into()),
            arguments: Some("{\"a\"".into()),
        };
        assert_eq!(
            got,
            vec![
                StreamEvent::Choice(ChoiceDelta {
                    tool_calls: vec![call],
                    ..Default::default()
                }),
                StreamEvent::Choice(ChoiceDelta {
                    index: 1,
                    content: Some("x".into()),
                    logprobs: Some(serde_json::json!({"content":[{"token":"x","logprob":-0.5}]})),
                    finish_reason: Some("stop".into()),
                    ..Default::default()
                }),
            ]
        );
    }

    #[test]
    fn a_structured_finish_of_choice_0_is_also_the_answers_finish() {
        let got = parse_structured(
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
        )
        .unwrap();
        assert_eq!(
            got[1],
            StreamEvent::Finished {
                reason: "tool_calls".into()
            }
        );
    }

    #[test]
    fn odd_tool_calls_never_break_a_stream() {
        for odd in [r#""x""#, "[1,null]", r#"[{"function":7,"index":-1}]"#] {
            let data =
                format!(r#"{{"choices":[{{"delta":{{"content":"t","tool_calls":{odd}}}}}]}}"#);
            assert_eq!(
                parse_chunk(&data).unwrap(),
                vec![StreamEvent::Text("t".into())]
            );
            assert!(parse_structured(&data).is_ok(), "{odd}");
        }
    }

    #[test]
    fn error_object_is_reported_with_its_message() {
        let got = parse_chunk(r#"{"error":{"code":500,"message":"slot unavailable"}}"#);
        assert_eq!(got, Err(ChunkError::Reported("slot unavailable".into())));
    }

    #[test]
    fn non_json_data_is_malformed() {
        assert!(matches!(
            parse_chunk("garbage"),
            Err(ChunkError::Malformed(_))
        ));
    }
}
