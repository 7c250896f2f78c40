//! System calls for LLM processes. A process created with system calls enabled (`query --syscalls`)
//! is offered four tools — [`spawn`, `wait`, `kill`, `ps`](tools) — and when its answer ends with
//! calls to them, the kernel carries them out, the way a program traps into a kernel, and resumes
//! the model with the results in its conversation (see [`crate::kernel::state`]'s `syscalls`).
//!
//! What the kernel keeps of a process's calls ([`SyscallState`]: its depth in the tree, the
//! children it spawned, the turn being carried out) lives in the request's parameters under
//! [`SYSCALLS_KEY`], beside the tools: it is journaled with the conversation (`Record::Asked`), so
//! a caller waiting on its children survives a crash, and it is taken out of every backend request.
//!
//! A process asked to call (`query --syscalls --must-call`) is sent OpenAI's `tool_choice:
//! "required"` on its first answer only ([`require_call`]): a server that constrains its output to
//! the tools (llama-server `--jinja` does, by grammar) then makes a well-formed call even from a
//! small model. Once that answer's calls have their results, the choice is `"auto"`
//! ([`release_call`]) so the model can answer in text; a `"required"` kept on every answer would
//! loop until the limits ended it.

pub mod calls;

use crate::kernel::process::Ask;
use crate::llm::MESSAGE_PARTS_KEY;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The parameter that holds the kernel's [`SyscallState`]: never forwarded to a backend.
pub const SYSCALLS_KEY: &str = "llmkernel_syscalls";

/// What the kernel keeps of a process's system calls.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyscallState {
    /// Generations below the user's process (which is 0).
    pub depth: u32,
    /// The process that spawned it, if a process did.
    #[serde(default)]
    pub parent: Option<u64>,
    /// Children spawned so far (ended ones count toward the limit).
    #[serde(default)]
    pub spawned: u32,
    /// Bytes of its output already folded into its conversation: the partial answer a
    /// continuation sends starts here.
    #[serde(default)]
    pub answered: usize,
    /// The calls of the answer being carried out, while some of them wait.
    #[serde(default)]
    pub turn: Option<Turn>,
}

/// One answer's calls, carried out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Turn {
    /// The answer's text before its calls.
    pub text: String,
    pub calls: Vec<CallRecord>,
}

/// One call and its result, or the child it waits on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    pub id: String,
    pub name: String,
    pub arguments: String,
    /// The tool result (JSON text), once there is one.
    pub result: Option<String>,
    /// The child a `wait` blocks on until it ends.
    pub waits_on: Option<u64>,
}

impl Turn {
    /// Whether some call still waits for a child.
    pub fn pending(&self) -> bool {
        self.calls.iter().any(|c| c.result.is_none())
    }
}

/// The tools offered to a process with system calls, in OpenAI's `tools` shape.
pub fn tools() -> Value {
    let function = |name: &str, description: &str, parameters: Value| {
        json!({ "type": "function", "function": {
            "name": name, "description": description, "parameters": parameters } })
    };
    let pid = json!({ "type": "object", "properties": { "pid": { "type": "integer",
        "description": "the pid spawn returned" } }, "required": ["pid"] });
    json!([
        function(
            "spawn",
            "Start a child process: another model run that answers `prompt` (with `system` as its \
             system prompt) in parallel with you. Returns its pid at once; `wait` for its answer.",
            json!({ "type": "object", "properties": {
                "prompt": { "type": "string", "description": "the child's task" },
                "system": { "type": "string", "description": "the child's system prompt" },
                "max_tokens": { "type": "integer", "description": "the most tokens it may generate" }
            }, "required": ["prompt"] }),
        ),
        function(
            "wait",
            "Wait until child `pid` has ended; returns its exit status and its whole output.",
            pid.clone(),
        ),
        function("kill", "End child `pid` (and its own children) now.", pid),
        function(
            "ps",
            "List your children: pid, state, tokens used and prompt.",
            json!({ "type": "object", "properties": {} }),
        ),
    ])
}

/// The parameters (a JSON object) of `ask`, or an empty object.
fn params(ask: &Ask) -> Map<String, Value> {
    match ask.params.as_deref().map(serde_json::from_str) {
        Some(Ok(Value::Object(map))) => map,
        _ => Map::new(),
    }
}

/// The process's system-call state, if it has system calls enabled.
pub fn state_of(ask: &Ask) -> Option<SyscallState> {
    let text = ask.params.as_deref()?;
    if !text.contains(SYSCALLS_KEY) {
        return None;
    }
    let map = params(ask);
    serde_json::from_value(map.get(SYSCALLS_KEY)?.clone()).ok()
}

/// Stores `state` in `ask`'s parameters.
pub fn store(ask: &mut Ask, state: &SyscallState) {
    let mut map = params(ask);
    map.insert(
        SYSCALLS_KEY.into(),
        serde_json::to_value(state).unwrap_or(Value::Null),
    );
    ask.params = Some(Value::Object(map).to_string());
}

/// Enables system calls in `ask`: the tools are offered, with `state` kept beside them.
pub fn enable(ask: &mut Ask, state: &SyscallState) {
    let mut map = params(ask);
    map.insert("tools".into(), tools());
    ask.params = Some(Value::Object(map).to_string());
    store(ask, state);
}

/// Whether a new process has system calls (`query --syscalls`, `X-LLMKernel-Syscalls: on`), and
/// whether its first answer must be a call (`--must-call`, `required`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Off,
    On,
    MustCall,
}

impl Mode {
    /// Enables in `ask` what the mode says, for a process at the top of its tree.
    pub fn apply(self, ask: &mut Ask) {
        if self == Mode::Off {
            return;
        }
        enable(ask, &SyscallState::default());
        if self == Mode::MustCall {
            require_call(ask);
        }
    }
}

/// Asks the backend for a tool call on `ask`'s next answer (`tool_choice: "required"`).
pub fn require_call(ask: &mut Ask) {
    let mut map = params(ask);
    map.insert(TOOL_CHOICE_KEY.into(), Value::from(REQUIRED));
    ask.params = Some(Value::Object(map).to_string());
}

/// After an answer's calls: a `"required"` tool choice becomes `"auto"`, so the model may answer
/// in text now that it has results. Any other choice stays as it was.
pub fn release_call(ask: &mut Ask) {
    let mut map = params(ask);
    if map.get(TOOL_CHOICE_KEY).and_then(Value::as_str) != Some(REQUIRED) {
        return;
    }
    map.insert(TOOL_CHOICE_KEY.into(), Value::from("auto"));
    ask.params = Some(Value::Object(map).to_string());
}

/// OpenAI's request field saying whether the model must call a tool.
const TOOL_CHOICE_KEY: &str = "tool_choice";
/// The [`TOOL_CHOICE_KEY`] value that makes the answer a tool call.
const REQUIRED: &str = "required";

/// Bytes of the output already in the conversation (0 without system calls).
pub fn answered(ask: &Ask) -> usize {
    state_of(ask).map_or(0, |s| s.answered)
}

/// Adds message parts (`tool_calls`, `tool_call_id`) to `ask`'s parameters, for the backend.
pub fn add_message_parts(ask: &mut Ask, parts: Vec<Value>) {
    let mut map = params(ask);
    let entry = map
        .entry(MESSAGE_PARTS_KEY.to_string())
        .or_insert_with(|| Value::Array(Vec::new()));
    if !entry.is_array() {
        *entry = Value::Array(Vec::new());
    }
    if let Value::Array(all) = entry {
        all.extend(parts);
    }
    ask.params = Some(Value::Object(map).to_string());
}

/// Takes the kernel's state out of a backend request body.
pub fn strip(body: &mut Value) {
    if let Some(map) = body.as_object_mut() {
        map.remove(SYSCALLS_KEY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enabling_offers_the_four_tools_and_keeps_the_state_beside_them() {
        let mut ask = Ask {
            params: Some(r#"{"temperature":0.5}"#.into()),
            ..Ask::default()
        };
        let state = SyscallState {
            depth: 2,
            ..SyscallState::default()
        };
        enable(&mut ask, &state);
        let map = params(&ask);
        let names: Vec<&str> = map["tools"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["function"]["name"].as_str())
            .collect();
        assert_eq!(names, ["spawn", "wait", "kill", "ps"]);
        assert_eq!(map["temperature"], 0.5);
        assert_eq!(state_of(&ask), Some(state));
        assert!(ask.unsliced(), "a request with tools runs unsliced");
        let mut body = Value::Object(map);
        strip(&mut body);
        assert!(body.get(SYSCALLS_KEY).is_none());
        assert!(state_of(&Ask::default()).is_none());
    }

    #[test]
    fn a_required_call_is_asked_once_then_the_choice_is_auto() {
        let mut ask = Ask::default();
        enable(&mut ask, &SyscallState::default());
        require_call(&mut ask);
        assert_eq!(params(&ask)["tool_choice"], "required");
        assert!(state_of(&ask).is_some(), "the state is kept beside it");
        release_call(&mut ask);
        assert_eq!(params(&ask)["tool_choice"], "auto");
        let mut named = Ask {
            params: Some(r#"{"tool_choice":{"type":"function"}}"#.into()),
            ..Ask::default()
        };
        release_call(&mut named);
        assert_eq!(params(&named)["tool_choice"]["type"], "function");
        let mut none = Ask::default();
        release_call(&mut none);
        assert!(none.params.is_none(), "no choice, nothing written");
    }

    #[test]
    fn a_mode_enables_what_it_says() {
        let mut off = Ask::default();
        Mode::Off.apply(&mut off);
        assert_eq!(off, Ask::default());
        let mut on = Ask::default();
        Mode::On.apply(&mut on);
        assert_eq!(state_of(&on), Some(SyscallState::default()));
        assert!(params(&on).get("tool_choice").is_none());
        let mut must = Ask::default();
        Mode::MustCall.apply(&mut must);
        assert_eq!(state_of(&must), Some(SyscallState::default()));
        assert_eq!(params(&must)["tool_choice"], "required");
    }

    #[test]
    fn message_parts_are_appended_to_those_already_kept() {
        let mut ask = Ask::default();
        add_message_parts(&mut ask, vec![json!({ "at": 1, "tool_call_id": "a" })]);
        add_message_parts(&mut ask, vec![json!({ "at": 3, "tool_call_id": "b" })]);
        let map = params(&ask);
        assert_eq!(map[MESSAGE_PARTS_KEY].as_array().map(Vec::len), Some(2));
    }
}
