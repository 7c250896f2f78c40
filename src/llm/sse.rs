//! The chunks of an OpenAI-compatible chat-completions stream. Servers differ in what else they put
//! in a chunk (llama.cpp adds `timings`, Ollama its own fields), so everything but the few fields we
//! read is ignored, and a chunk without choices (a usage-only or keep-alive chunk) is fine.

use serde::Deserialize;

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
    delta: Option<Delta>,
    /// A whole (not streamed) answer's text, from a server that answered with one JSON completion.
    #[serde(default)]
    message: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
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
