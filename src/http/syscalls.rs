//! System calls on the front door: `X-LLMKernel-Syscalls: on` (or `1`, `true`, `yes`), else the
//! body's `syscalls: true`, makes the request's process a `query --syscalls` one: it is offered the
//! kernel's tools (`spawn`, `wait`, `kill`, `ps`) and the kernel carries out its calls to them
//! ([`crate::kernel::syscalls`]). `required` (the header's value, or the body's `"syscalls":
//! "required"`) is `--must-call`: the first answer must be a call. The header wins over the body,
//! as the other `X-LLMKernel-*` headers do, and the field never reaches the backend.
//!
//! The tools are the kernel's, not the client's: a request with system calls that also sends its
//! own `tools` or `tool_choice` is refused (400) rather than merged, since the kernel could not
//! carry out the client's calls nor hand the client its own. What the client gets is the answer's
//! text; the calls and their results, which are not OpenAI `tool_calls` it could act on, are
//! streamed as SSE comments (`: [tool call ID] NAME(ARGS)`, `: [tool result ID] RESULT`) and left
//! out of a whole answer. `cat` and `/v1/processes/{pid}/output` show them all.

use super::error::ApiError;
use axum::http::HeaderMap;
use serde_json::{Map, Value};

/// The body's field this module reads.
pub const BODY_FIELD: &str = "syscalls";

pub use crate::kernel::syscalls::Mode as Syscalls;

/// What a request asks, refusing a request that also brings its own tools.
pub fn parse(body: &Map<String, Value>, headers: &HeaderMap) -> Result<Syscalls, ApiError> {
    let asked = match headers.get("x-llmkernel-syscalls") {
        Some(v) => match v
            .to_str()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "on" | "1" | "true" | "yes" => Syscalls::On,
            "required" => Syscalls::MustCall,
            "off" | "0" | "false" | "no" => Syscalls::Off,
            other => {
                return Err(ApiError::bad_request(format!(
                    "X-LLMKernel-Syscalls: {other:?} is not on, off or required"
                )));
            }
        },
        None => match body.get(BODY_FIELD) {
            None | Some(Value::Null) | Some(Value::Bool(false)) => Syscalls::Off,
            Some(Value::Bool(true)) => Syscalls::On,
            Some(Value::String(s)) if s == "required" => Syscalls::MustCall,
            Some(_) => {
                return Err(ApiError::bad_request(
                    "`syscalls` must be true, false or \"required\"",
                ));
            }
        },
    };
    if asked == Syscalls::Off {
        return Ok(asked);
    }
    for own in ["tools", "tool_choice", "functions", "function_call"] {
        if body.get(own).is_some_and(|v| !v.is_null()) {
            return Err(ApiError::bad_request(format!(
                "`{own}` cannot be sent with system calls on: the process is offered the kernel's \
                 own tools (spawn, wait, kill, ps); use \"required\" to make its first answer a call"
            )));
        }
    }
    Ok(asked)
}

/// Whether a piece of a system-call process's output is the kernel's writing of calls or results
/// (whole lines `[tool call …]` / `[tool result …]`, each written as one piece) rather than text
/// the model generated.
pub fn is_calls_or_results(text: &str) -> bool {
    let first = text.trim_start_matches('\n');
    first.starts_with("[tool call ") || first.starts_with("[tool result ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).expect("test body")
    }

    fn header(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-llmkernel-syscalls", value.parse().expect("value"));
        headers
    }

    #[test]
    fn the_header_wins_over_the_body_and_required_is_must_call() {
        let none = HeaderMap::new();
        assert_eq!(parse(&body("{}"), &none).ok(), Some(Syscalls::Off));
        let on = body(r#"{"syscalls": true}"#);
        assert_eq!(parse(&on, &none).ok(), Some(Syscalls::On));
        let required = body(r#"{"syscalls": "required"}"#);
        assert_eq!(parse(&required, &none).ok(), Some(Syscalls::MustCall));
        assert_eq!(parse(&on, &header("off")).ok(), Some(Syscalls::Off));
        assert_eq!(parse(&body("{}"), &header("On")).ok(), Some(Syscalls::On));
        assert_eq!(
            parse(&body("{}"), &header("required")).ok(),
            Some(Syscalls::MustCall)
        );
    }

    #[test]
    fn malformed_values_and_the_clients_own_tools_are_bad_requests() {
        let err = parse(&body("{}"), &header("maybe")).expect_err("bad header");
        assert!(format!("{err:?}").contains("X-LLMKernel-Syscalls"));
        assert!(parse(&body(r#"{"syscalls": 1}"#), &HeaderMap::new()).is_err());
        let tools = body(r#"{"syscalls": true, "tools": []}"#);
        let err = parse(&tools, &HeaderMap::new()).expect_err("own tools");
        assert!(format!("{err:?}").contains("`tools` cannot be sent"));
        let choice = body(r#"{"tool_choice": "auto"}"#);
        assert!(parse(&choice, &header("on")).is_err());
        // Without system calls a client's tools are its own business.
        let off = body(r#"{"tools": [], "tool_choice": "auto"}"#);
        assert_eq!(parse(&off, &HeaderMap::new()).ok(), Some(Syscalls::Off));
    }

    #[test]
    fn the_kernels_lines_are_told_from_the_models_text() {
        assert!(is_calls_or_results("[tool call c1] ps({})\n"));
        assert!(is_calls_or_results("\n[tool result c1] {}\n"));
        assert!(!is_calls_or_results("["));
        assert!(!is_calls_or_results("The answer is [tool"));
    }
}
