//! The parts of a conversation's messages that the kernel's [`ChatMessage`](crate::proto::ChatMessage)
//! does not hold — an assistant message's `tool_calls`, a tool message's `tool_call_id`, a
//! message's `name` — kept with the request's parameters under [`MESSAGE_PARTS_KEY`] and put back
//! into the messages of each backend request, so that a tool-call round trip reaches the server
//! as the client sent it.

use serde_json::{Map, Value};

/// The parameter that holds the parts: never forwarded as such.
pub const MESSAGE_PARTS_KEY: &str = "llmkernel_message_parts";

/// The fields of a message kept beside its role and text.
const KEPT: &[&str] = &["tool_calls", "tool_call_id", "name"];

/// The parts of `messages` (a request's `messages` array) worth keeping, as `[{"at": i, …}]`;
/// `None` when no message has any.
pub fn message_parts(messages: &[Value]) -> Option<Value> {
    let parts: Vec<Value> = messages
        .iter()
        .enumerate()
        .filter_map(|(at, m)| {
            let mut kept: Map<String, Value> = KEPT
                .iter()
                .filter_map(|k| {
                    m.get(*k)
                        .filter(|v| !v.is_null())
                        .map(|v| (k.to_string(), v.clone()))
                })
                .collect();
            (!kept.is_empty()).then(|| {
                kept.insert("at".into(), at.into());
                Value::Object(kept)
            })
        })
        .collect();
    (!parts.is_empty()).then_some(Value::Array(parts))
}

/// Takes the parts out of a backend request body and puts each back into the message it came from.
/// An assistant message that made tool calls and said nothing gets `content: null`, as OpenAI's own
/// messages have it.
pub fn restore(body: &mut Value) {
    let Some(Value::Array(parts)) = body
        .as_object_mut()
        .and_then(|b| b.remove(MESSAGE_PARTS_KEY))
    else {
        return;
    };
    let Some(Value::Array(messages)) = body.get_mut("messages") else {
        return;
    };
    for part in parts {
        let Value::Object(mut part) = part else {
            continue;
        };
        let at = part.remove("at").and_then(|a| a.as_u64());
        let Some(Value::Object(message)) = at.and_then(|at| messages.get_mut(at as usize)) else {
            continue;
        };
        let calls = part.contains_key("tool_calls");
        message.extend(part);
        if calls && message.get("content").and_then(Value::as_str) == Some("") {
            message.insert("content".into(), Value::Null);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tool_call_parts_go_back_into_their_messages() {
        let asked = json!([
            { "role": "user", "content": "weather?" },
            { "role": "assistant", "content": null, "tool_calls": [{ "id": "call_1", "type": "function", "function": { "name": "w", "arguments": "{}" } }] },
            { "role": "tool", "tool_call_id": "call_1", "content": "sunny" },
        ]);
        let parts = message_parts(asked.as_array().unwrap()).unwrap();
        let mut body = json!({
            "messages": [
                { "role": "user", "content": "weather?" },
                { "role": "assistant", "content": "" },
                { "role": "tool", "content": "sunny" },
            ],
            MESSAGE_PARTS_KEY: parts,
        });
        restore(&mut body);
        assert_eq!(body["messages"], asked);
        assert!(body.get(MESSAGE_PARTS_KEY).is_none());
    }

    #[test]
    fn plain_messages_have_no_parts_and_odd_parts_are_ignored() {
        assert_eq!(
            message_parts(&[json!({ "role": "user", "content": "x" })]),
            None
        );
        let mut body = json!({ "messages": [{ "role": "user" }], MESSAGE_PARTS_KEY: [1, { "at": 9, "name": "n" }, { "name": "n" }] });
        restore(&mut body);
        assert_eq!(body, json!({ "messages": [{ "role": "user" }] }));
    }
}
