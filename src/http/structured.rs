//! The structured parts of an answer in OpenAI's shape: each [`ChoiceDelta`] the process received
//! as one streamed choice (its text, tool-call deltas with their index, id and function parts,
//! log-probabilities, finish reason), and all of them assembled into the choices of a whole
//! completion (a message with `tool_calls`, `logprobs.content`, one choice per index).

use super::request::Flavor;
use crate::llm::{ChoiceDelta, assemble};
use serde_json::{Map, Value, json};

/// One delta as a streamed chunk's choice.
pub fn streamed_choice(flavor: Flavor, d: &ChoiceDelta) -> Value {
    let logprobs = d.logprobs.clone().unwrap_or(Value::Null);
    match flavor {
        Flavor::Chat => {
            let mut delta = Map::new();
            if let Some(text) = &d.content {
                delta.insert("content".into(), text.clone().into());
            }
            if !d.tool_calls.is_empty() {
                let calls: Vec<Value> = d.tool_calls.iter().map(call_delta).collect();
                delta.insert("tool_calls".into(), calls.into());
            }
            json!({ "index": d.index, "delta": delta, "logprobs": logprobs, "finish_reason": d.finish_reason })
        }
        Flavor::Text => json!({
            "index": d.index,
            "text": d.content.clone().unwrap_or_default(),
            "logprobs": logprobs,
            "finish_reason": d.finish_reason,
        }),
    }
}

/// A streamed tool-call delta: its index always, the rest when the backend sent it.
fn call_delta(c: &crate::llm::ToolCallDelta) -> Value {
    let mut function = Map::new();
    if let Some(name) = &c.name {
        function.insert("name".into(), name.clone().into());
    }
    if let Some(arguments) = &c.arguments {
        function.insert("arguments".into(), arguments.clone().into());
    }
    let mut call = Map::new();
    call.insert("index".into(), c.index.into());
    if let Some(id) = &c.id {
        call.insert("id".into(), id.clone().into());
        call.insert("type".into(), "function".into());
    }
    call.insert("function".into(), function.into());
    Value::Object(call)
}

/// The choices that have not said how they finished, given those that did: each gets `reason`
/// in a last streamed choice (choice 0 at least, for an answer with no delta at all).
pub fn unfinished(deltas_seen: &[(u32, bool)]) -> Vec<u32> {
    if deltas_seen.is_empty() {
        return vec![0];
    }
    let mut open: Vec<u32> = deltas_seen
        .iter()
        .filter(|(index, _)| !deltas_seen.iter().any(|(i, done)| i == index && *done))
        .map(|(index, _)| *index)
        .collect();
    open.sort_unstable();
    open.dedup();
    open
}

/// The choices of a whole completion; a choice that did not say how it finished gets `reason`.
pub fn whole_choices(flavor: Flavor, deltas: &[ChoiceDelta], reason: &str) -> Vec<Value> {
    let mut choices = assemble(deltas);
    if choices.is_empty() {
        choices.push(Default::default());
    }
    choices
        .into_iter()
        .map(|c| {
            let logprobs = if c.logprobs.is_empty() {
                Value::Null
            } else {
                json!({ "content": c.logprobs })
            };
            let finish = c.finish_reason.unwrap_or_else(|| reason.to_string());
            match flavor {
                Flavor::Chat => {
                    let mut message = json!({ "role": "assistant", "content": c.content });
                    if !c.tool_calls.is_empty() {
                        if c.content.is_empty() {
                            message["content"] = Value::Null;
                        }
                        let calls: Vec<Value> = c
                            .tool_calls
                            .iter()
                            .map(|t| json!({ "id": t.id, "type": "function", "function": { "name": t.name, "arguments": t.arguments } }))
                            .collect();
                        message["tool_calls"] = calls.into();
                    }
                    json!({ "index": c.index, "message": message, "logprobs": logprobs, "finish_reason": finish })
                }
                Flavor::Text => {
                    json!({ "index": c.index, "text": c.content, "logprobs": logprobs, "finish_reason": finish })
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::ToolCallDelta;

    fn call(id: Option<&str>, name: Option<&str>, args: &str) -> ChoiceDelta {
        ChoiceDelta {
            tool_calls: vec![ToolCallDelta {
                index: 0,
                id: id.map(str::to_string),
                name: name.map(str::to_string),
                arguments: Some(args.into()),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn a_tool_call_streams_as_openai_deltas_and_assembles_into_a_message() {
        let first = streamed_choice(Flavor::Chat, &call(Some("call_1"), Some("f"), ""));
        assert_eq!(
            first["delta"]["tool_calls"][0],
            json!({ "index": 0, "id": "call_1", "type": "function", "function": { "name": "f", "arguments": "" } })
        );
        let next = streamed_choice(Flavor::Chat, &call(None, None, "{}"));
        assert_eq!(
            next["delta"]["tool_calls"][0],
            json!({ "index": 0, "function": { "arguments": "{}" } })
        );
        let end = ChoiceDelta {
            finish_reason: Some("tool_calls".into()),
            ..Default::default()
        };
        let deltas = [
            call(Some("call_1"), Some("f"), ""),
            call(None, None, "{}"),
            end,
        ];
        let whole = whole_choices(Flavor::Chat, &deltas, "stop");
        assert_eq!(
            whole,
            vec![json!({
                "index": 0,
                "message": { "role": "assistant", "content": null, "tool_calls": [{ "id": "call_1", "type": "function", "function": { "name": "f", "arguments": "{}" } }] },
                "logprobs": null,
                "finish_reason": "tool_calls",
            })]
        );
    }

    #[test]
    fn choices_that_did_not_finish_get_the_answers_reason() {
        assert_eq!(unfinished(&[]), vec![0]);
        assert_eq!(unfinished(&[(1, false), (0, false), (0, true)]), vec![1]);
        let deltas = [ChoiceDelta {
            index: 1,
            content: Some("b".into()),
            ..Default::default()
        }];
        let whole = whole_choices(Flavor::Text, &deltas, "length");
        assert_eq!(whole[0]["finish_reason"], "length");
        assert_eq!(whole[0]["text"], "b");
    }
}
