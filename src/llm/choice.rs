//! The structured parts of an answer, beyond its text: the choices of a request with `n` > 1, their
//! tool calls and log-probabilities. A streamed chunk carries them as deltas ([`ChoiceDelta`]); the
//! tool calls of one choice are then assembled ([`assemble`]) into whole [`ToolCall`]s — the form a
//! client gets in a non-streamed answer, `cat` shows, and the kernel can act on.

use serde_json::Value;

/// One tool call the model made, assembled from its stream deltas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolCall {
    /// The call's id, which the tool's answer names (`tool_call_id`).
    pub id: String,
    /// The function called.
    pub name: String,
    /// Its arguments as the model wrote them: JSON text, not checked.
    pub arguments: String,
}

/// A piece of one tool call, as a stream carries it: the first delta of a call has its id and name,
/// the next ones fragments of its arguments; `index` says which call of the choice it belongs to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ToolCallDelta {
    pub index: u32,
    pub id: Option<String>,
    pub name: Option<String>,
    pub arguments: Option<String>,
}

/// What one chunk says about one choice.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChoiceDelta {
    /// Which choice (0 unless the request asked for several).
    pub index: u32,
    /// New text of this choice's answer.
    pub content: Option<String>,
    pub tool_calls: Vec<ToolCallDelta>,
    /// The chunk's `logprobs` object as the server sent it.
    pub logprobs: Option<Value>,
    pub finish_reason: Option<String>,
}

impl ChoiceDelta {
    /// Whether it carries nothing at all (a role-only delta).
    pub fn is_empty(&self) -> bool {
        self.content.as_deref().is_none_or(str::is_empty)
            && self.tool_calls.is_empty()
            && self.logprobs.is_none()
            && self.finish_reason.is_none()
    }

    /// Whether it carries generated tokens (text or a tool call's parts).
    pub fn is_progress(&self) -> bool {
        self.content.as_deref().is_some_and(|c| !c.is_empty()) || !self.tool_calls.is_empty()
    }
}

/// One choice of a whole answer, its deltas put together.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AssembledChoice {
    pub index: u32,
    pub content: String,
    pub tool_calls: Vec<ToolCall>,
    /// The `content` entries of every chunk's `logprobs`, in order.
    pub logprobs: Vec<Value>,
    pub finish_reason: Option<String>,
}

/// Puts deltas together, choice by choice (ordered by index): text concatenated, each tool call's
/// id and name taken from the delta that has them and its argument fragments joined.
pub fn assemble<'a>(deltas: impl IntoIterator<Item = &'a ChoiceDelta>) -> Vec<AssembledChoice> {
    let mut choices: Vec<AssembledChoice> = Vec::new();
    for delta in deltas {
        let choice = match choices.iter().position(|c| c.index == delta.index) {
            Some(at) => &mut choices[at],
            None => {
                choices.push(AssembledChoice {
                    index: delta.index,
                    ..Default::default()
                });
                choices.sort_by_key(|c| c.index);
                let at = choices.iter().position(|c| c.index == delta.index);
                &mut choices[at.unwrap_or(0)]
            }
        };
        if let Some(text) = &delta.content {
            choice.content.push_str(text);
        }
        for part in &delta.tool_calls {
            add_call_part(&mut choice.tool_calls, part);
        }
        if let Some(Value::Array(entries)) = delta.logprobs.as_ref().and_then(|l| l.get("content"))
        {
            choice.logprobs.extend(entries.iter().cloned());
        }
        if let Some(reason) = &delta.finish_reason {
            choice.finish_reason = Some(reason.clone());
        }
    }
    choices
}

/// Adds one delta to the calls assembled so far. A delta names its call by index; one past the
/// calls so far (or further: a server's odd numbering) starts a new call.
fn add_call_part(calls: &mut Vec<ToolCall>, part: &ToolCallDelta) {
    let at = part.index as usize;
    let call = if at < calls.len() {
        &mut calls[at]
    } else {
        calls.push(ToolCall {
            id: String::new(),
            name: String::new(),
            arguments: String::new(),
        });
        let last = calls.len() - 1;
        &mut calls[last]
    };
    if let Some(id) = part.id.as_deref().filter(|id| !id.is_empty()) {
        call.id = id.to_string();
    }
    if let Some(name) = &part.name {
        call.name.push_str(name);
    }
    if let Some(arguments) = &part.arguments {
        call.arguments.push_str(arguments);
    }
}

/// Whether a request body (or its parameters) asks for an answer with structured parts: tools,
/// several choices, or log-probabilities. Its stream is then read whole ([`ChoiceDelta`]s).
pub fn has_structured_parts(body: &Value) -> bool {
    let tools = body
        .get("tools")
        .is_some_and(|t| t.as_array().is_none_or(|a| !a.is_empty()) && !t.is_null());
    let choices = body.get("n").and_then(Value::as_u64).unwrap_or(1);
    let logprobs = body
        .get("logprobs")
        .is_some_and(|v| v.as_bool() != Some(false) && !v.is_null());
    let top = body.get("top_logprobs").is_some_and(|v| !v.is_null());
    tools || choices > 1 || logprobs || top
}

/// How `cat` shows a tool call: one line, `[tool call ID] NAME(ARGUMENTS)`.
pub fn render_call(call: &ToolCall) -> String {
    format!("[tool call {}] {}({})", call.id, call.name, call.arguments)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(index: u32, id: Option<&str>, name: Option<&str>, args: Option<&str>) -> ChoiceDelta {
        ChoiceDelta {
            tool_calls: vec![ToolCallDelta {
                index,
                id: id.map(str::to_string),
                name: name.map(str::to_string),
                arguments: args.map(str::to_string),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn tool_calls_are_assembled_from_their_deltas_by_index() {
        let deltas = [
            part(0, Some("call_a"), Some("get_weather"), Some("")),
            part(0, None, None, Some("{\"city\":")),
            part(1, Some("call_b"), Some("get_time"), Some("{}")),
            part(0, None, None, Some("\"Paris\"}")),
            ChoiceDelta {
                finish_reason: Some("tool_calls".into()),
                ..Default::default()
            },
        ];
        let choices = assemble(&deltas);
        assert_eq!(choices.len(), 1);
        assert_eq!(
            choices[0].tool_calls,
            vec![
                ToolCall {
                    id: "call_a".into(),
                    name: "get_weather".into(),
                    arguments: "{\"city\":\"Paris\"}".into()
                },
                ToolCall {
                    id: "call_b".into(),
                    name: "get_time".into(),
                    arguments: "{}".into()
                },
            ]
        );
        assert_eq!(choices[0].finish_reason.as_deref(), Some("tool_calls"));
        assert_eq!(
            render_call(&choices[0].tool_calls[0]),
            "[tool call call_a] get_weather({\"city\":\"Paris\"})"
        );
    }

    #[test]
    fn several_choices_keep_their_own_text_and_logprobs_in_index_order() {
        let text = |index, t: &str, lp: f64| ChoiceDelta {
            index,
            content: Some(t.into()),
            logprobs: Some(serde_json::json!({ "content": [{ "token": t, "logprob": lp }] })),
            ..Default::default()
        };
        let choices = assemble(&[
            text(1, "b0 ", -1.0),
            text(0, "a0 ", -0.5),
            text(1, "b1 ", -2.0),
        ]);
        assert_eq!(choices.len(), 2);
        assert_eq!((choices[0].index, choices[0].content.as_str()), (0, "a0 "));
        assert_eq!(
            (choices[1].index, choices[1].content.as_str()),
            (1, "b0 b1 ")
        );
        assert_eq!(choices[1].logprobs.len(), 2);
        assert_eq!(choices[1].logprobs[1]["logprob"], -2.0);
    }

    #[test]
    fn structured_parts_are_tools_choices_or_logprobs() {
        for (body, want) in [
            (r#"{"tools":[{"type":"function"}]}"#, true),
            (r#"{"tools":[]}"#, false),
            (r#"{"tools":null}"#, false),
            (r#"{"n":2}"#, true),
            (r#"{"n":1,"logprobs":false}"#, false),
            (r#"{"logprobs":true}"#, true),
            (r#"{"top_logprobs":2}"#, true),
            (r#"{"response_format":{"type":"json_object"}}"#, false),
        ] {
            let body: Value = serde_json::from_str(body).unwrap();
            assert_eq!(has_structured_parts(&body), want, "{body}");
        }
    }

    #[test]
    fn a_huge_call_index_does_not_allocate_a_gap() {
        let choices = assemble(&[part(u32::MAX, Some("x"), Some("f"), Some("{}"))]);
        assert_eq!(choices[0].tool_calls.len(), 1);
        assert_eq!(choices[0].tool_calls[0].name, "f");
    }
}
