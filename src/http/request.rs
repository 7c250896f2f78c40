//! What an OpenAI request asks, as a process to create: the conversation (text content parts
//! flattened), the model, the allowance (`max_tokens` or `max_completion_tokens`), the nice value
//! (`X-LLMKernel-Nice`, else the body's `priority`, vLLM's convention: lower runs earlier), the type
//! (`X-LLMKernel-Type`, else HOUSEKEEPING for `service_tier: "flex"`, else USER), and every other
//! field kept as it came for the backend. The kernel's own fields never reach the backend. System
//! calls (`X-LLMKernel-Syscalls`, [`super::syscalls`]) are enabled in the process's ask here.

use super::error::ApiError;
use crate::kernel::process::Ask;
use crate::proto::{ChatMessage, ProcessType, Role, SubmitRequest};
use axum::http::{HeaderMap, header};
use serde_json::{Map, Value};

/// Fields the kernel reads itself instead of forwarding.
const KERNEL_FIELDS: &[&str] = &[
    "messages",
    "prompt",
    "model",
    "stream",
    "stream_options",
    "max_tokens",
    "max_completion_tokens",
    "priority",
    "service_tier",
    crate::llm::MESSAGE_PARTS_KEY,
];

/// Characters of a user agent kept for `ps -l`: enough to tell clients apart.
const USER_AGENT_CHARS: usize = 60;

/// Which endpoint a request came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// `/v1/chat/completions`: messages in, `chat.completion` out.
    Chat,
    /// `/v1/completions`: a prompt (sent as one user message), `text_completion` out.
    Text,
}

/// A request, understood.
#[derive(Debug)]
pub struct Plan {
    pub submit: SubmitRequest,
    pub ask: Ask,
    pub stream: bool,
    pub include_usage: bool,
    /// The process goes on when the client leaves (`X-LLMKernel-Detach: 1`).
    pub detach: bool,
    /// System calls are on (`X-LLMKernel-Syscalls`): the kernel's tools, not the client's.
    pub syscalls: bool,
}

/// Understands a request body and its headers.
pub fn parse(flavor: Flavor, body: &[u8], headers: &HeaderMap) -> Result<Plan, ApiError> {
    let body: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))?;
    let Value::Object(body) = body else {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    };
    let messages = match flavor {
        Flavor::Chat => messages(body.get("messages"))?,
        Flavor::Text => vec![ChatMessage {
            role: Role::User,
            content: prompt(body.get("prompt"))?,
        }],
    };
    let model = match body.get("model") {
        None | Some(Value::Null) => None,
        Some(Value::String(m)) => Some(m.clone()),
        Some(_) => return Err(ApiError::bad_request("`model` must be a string")),
    };
    let stream = flag(&body, "stream")?;
    let include_usage = body
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .is_some_and(|v| v.as_bool() == Some(true));
    let max_tokens = max_tokens(&body)?;
    let nice = nice(&body, headers)?;
    let process_type = process_type(&body, headers)?;
    let deadline = super::deadline::parse(&body, headers)?;
    let syscalls = super::syscalls::parse(&body, headers)?;
    let parts = body
        .get("messages")
        .and_then(Value::as_array)
        .and_then(|m| crate::llm::message_parts(m));
    let mut params: Map<String, Value> = body
        .into_iter()
        .filter(|(k, _)| !KERNEL_FIELDS.contains(&k.as_str()))
        .filter(|(k, _)| !super::deadline::BODY_FIELDS.contains(&k.as_str()))
        .filter(|(k, _)| k != super::syscalls::BODY_FIELD)
        .collect();
    // The kernel's own record of a process's system calls is never a client's to write.
    params.remove(crate::kernel::syscalls::SYSCALLS_KEY);
    // Tool calls and their answers in the conversation, which a process's messages do not hold.
    if let Some(parts) = parts {
        params.insert(crate::llm::MESSAGE_PARTS_KEY.into(), parts);
    }
    let preview = messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .or(messages.last())
        .map_or(String::new(), |m| m.content.clone());
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown client");
    let origin = format!(
        "http {}",
        agent.chars().take(USER_AGENT_CHARS).collect::<String>()
    );
    let mut ask = Ask {
        messages,
        model,
        params: (!params.is_empty()).then(|| Value::Object(params).to_string()),
        origin: Some(origin),
        deadline,
    };
    syscalls.apply(&mut ask);
    Ok(Plan {
        submit: SubmitRequest {
            prompt: preview,
            system: None,
            process_type,
            max_tokens,
            nice,
            attach: true,
        },
        ask,
        stream,
        include_usage,
        detach: headers
            .get("x-llmkernel-detach")
            .is_some_and(|v| matches!(v.as_bytes(), b"1" | b"true" | b"yes")),
        syscalls: syscalls != super::syscalls::Syscalls::Off,
    })
}

fn flag(body: &Map<String, Value>, key: &str) -> Result<bool, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ApiError::bad_request(format!(
            "`{key}` must be true or false"
        ))),
    }
}

/// The conversation: every message's role and text; content-part arrays keep their text parts.
fn messages(value: Option<&Value>) -> Result<Vec<ChatMessage>, ApiError> {
    let Some(Value::Array(items)) = value else {
        return Err(ApiError::bad_request(
            "`messages` must be an array of messages",
        ));
    };
    if items.is_empty() {
        return Err(ApiError::bad_request("`messages` is empty"));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let role = match m.get("role").and_then(Value::as_str) {
                Some("system" | "developer") => Role::System,
                Some("user") => Role::User,
                Some("assistant") => Role::Assistant,
                Some("tool" | "function") => Role::Tool,
                other => {
                    return Err(ApiError::bad_request(format!(
                        "messages[{i}].role {other:?} is not system, developer, user, assistant or tool"
                    )));
                }
            };
            let content = content(m.get("content"))
                .map_err(|e| ApiError::bad_request(format!("messages[{i}].content {e}")))?;
            Ok(ChatMessage { role, content })
        })
        .collect()
}

/// A message's text: a string, an array of content parts (their text joined), or nothing.
fn content(value: Option<&Value>) -> Result<String, String> {
    match value {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => {
            let mut text = String::new();
            for part in parts {
                match (part.get("type").and_then(Value::as_str), part.get("text")) {
                    (Some("text"), Some(Value::String(t))) => text.push_str(t),
                    (kind, _) => {
                        return Err(format!(
                            "has a {} part; only text parts are supported",
                            kind.unwrap_or("untyped")
                        ));
                    }
                }
            }
            Ok(text)
        }
        Some(_) => Err("must be a string or an array of content parts".into()),
    }
}

/// A completion prompt: a string, or an array holding one.
fn prompt(value: Option<&Value>) -> Result<String, ApiError> {
    match value {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(items)) if items.len() == 1 && items[0].is_string() => {
            Ok(items[0].as_str().unwrap_or_default().to_string())
        }
        _ => Err(ApiError::bad_request(
            "`prompt` must be a string (one prompt per request)",
        )),
    }
}

fn max_tokens(body: &Map<String, Value>) -> Result<Option<u32>, ApiError> {
    for key in ["max_completion_tokens", "max_tokens"] {
        match body.get(key) {
            None | Some(Value::Null) => {}
            Some(v) => {
                let n = v.as_u64().and_then(|n| u32::try_from(n).ok());
                return n.map(Some).ok_or_else(|| {
                    ApiError::bad_request(format!("`{key}` must be a positive integer"))
                });
            }
        }
    }
    Ok(None)
}

/// Nice from `X-LLMKernel-Nice`, else the body's `priority` (range and privilege are checked by
/// the kernel, as for `llmsh`).
fn nice(body: &Map<String, Value>, headers: &HeaderMap) -> Result<i8, ApiError> {
    let out_of_range =
        |what: &str| ApiError::bad_request(format!("{what} must be a nice value from -20 to 19"));
    if let Some(v) = headers.get("x-llmkernel-nice") {
        let text = v.to_str().unwrap_or("").trim();
        return text.parse().map_err(|_| out_of_range("X-LLMKernel-Nice"));
    }
    match body.get("priority") {
        None | Some(Value::Null) => Ok(0),
        Some(v) => v
            .as_i64()
            .and_then(|n| i8::try_from(n).ok())
            .ok_or_else(|| out_of_range("`priority`")),
    }
}

fn process_type(body: &Map<String, Value>, headers: &HeaderMap) -> Result<ProcessType, ApiError> {
    if let Some(v) = headers.get("x-llmkernel-type") {
        let text = v.to_str().unwrap_or("").trim();
        return text
            .parse()
            .map_err(|e: String| ApiError::bad_request(format!("X-LLMKernel-Type: {e}")));
    }
    match body.get("service_tier").and_then(Value::as_str) {
        Some("flex") => Ok(ProcessType::Housekeeping),
        _ => Ok(ProcessType::User),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn a_chat_request_becomes_a_conversation_with_its_parameters_kept_and_ours_removed() {
        let body = br#"{"model":"m","messages":[{"role":"developer","content":"be"},
            {"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}],
            "temperature":0.5,"stop":["x"],"priority":3,"service_tier":"flex","stream":true,
            "stream_options":{"include_usage":true},"max_tokens":7}"#;
        let plan = parse(Flavor::Chat, body, &headers(&[("user-agent", "curl/8")])).unwrap();
        assert_eq!(plan.ask.messages[0].role, Role::System);
        assert_eq!(plan.ask.messages[1].content, "ab");
        assert_eq!(plan.submit.prompt, "ab");
        assert_eq!(plan.ask.model.as_deref(), Some("m"));
        let params: Value = serde_json::from_str(plan.ask.params.as_deref().unwrap()).unwrap();
        assert_eq!(params, serde_json::json!({"temperature":0.5,"stop":["x"]}));
        assert_eq!((plan.submit.nice, plan.submit.max_tokens), (3, Some(7)));
        assert_eq!(plan.submit.process_type, ProcessType::Housekeeping);
        assert!(plan.stream && plan.include_usage && !plan.detach);
        assert_eq!(plan.ask.origin.as_deref(), Some("http curl/8"));
    }

    #[test]
    fn headers_override_the_body_and_detach_is_read() {
        let h = headers(&[
            ("x-llmkernel-nice", "5"),
            ("x-llmkernel-type", "housekeeping"),
            ("x-llmkernel-detach", "1"),
        ]);
        let plan = parse(Flavor::Text, br#"{"prompt":"hi","priority":-3}"#, &h).unwrap();
        assert_eq!(plan.submit.nice, 5);
        assert_eq!(plan.submit.process_type, ProcessType::Housekeeping);
        assert!(plan.detach);
        assert_eq!(plan.ask.messages[0].content, "hi");
        assert_eq!(plan.ask.params, None);
    }

    #[test]
    fn malformed_requests_are_bad_requests_naming_what() {
        for (body, want) in [
            (&b"nope"[..], "not JSON"),
            (br#"[1]"#, "JSON object"),
            (br#"{"messages":[]}"#, "empty"),
            (
                br#"{"messages":[{"role":"wizard","content":"x"}]}"#,
                "wizard",
            ),
            (
                br#"{"messages":[{"role":"user","content":[{"type":"image_url"}]}]}"#,
                "image_url",
            ),
            (
                br#"{"messages":[{"role":"user","content":"x"}],"priority":1000}"#,
                "nice value",
            ),
            (
                br#"{"messages":[{"role":"user","content":"x"}],"max_tokens":-1}"#,
                "max_tokens",
            ),
        ] {
            let err = parse(Flavor::Chat, body, &HeaderMap::new()).unwrap_err();
            assert_eq!(err.status, axum::http::StatusCode::BAD_REQUEST);
            assert!(err.message.contains(want), "{}", err.message);
        }
    }
}
