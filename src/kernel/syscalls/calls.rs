//! A model's tool call read as a system call ([`Syscall::parse`]), and the results it gets back:
//! JSON objects, an error being `{"error": "EAGAIN", "message": …}` with the errno a Unix program
//! would see (`EINVAL` for a malformed call, `ESRCH` for no such process, `EPERM` for a process
//! that is not the caller's child, `EAGAIN` past a limit, `ENOMEM` for a child whose prompt fills a
//! slot's context).

use crate::llm::ToolCall;
use crate::proto::Pid;
use serde_json::{Value, json};

/// A call the kernel can carry out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Syscall {
    Spawn {
        prompt: String,
        system: Option<String>,
        max_tokens: Option<u32>,
    },
    Wait(Pid),
    Kill(Pid),
    Ps,
}

/// An errno and what it means here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyscallError {
    pub errno: &'static str,
    pub message: String,
}

impl SyscallError {
    pub fn new(errno: &'static str, message: impl Into<String>) -> SyscallError {
        SyscallError {
            errno,
            message: message.into(),
        }
    }

    /// The tool result the model reads.
    pub fn result(&self) -> String {
        json!({ "error": self.errno, "message": self.message }).to_string()
    }
}

fn invalid(message: impl Into<String>) -> SyscallError {
    SyscallError::new("EINVAL", message)
}

impl Syscall {
    /// Reads a tool call; a call of no known tool, or with arguments that are not what its schema
    /// says, is `EINVAL`.
    pub fn parse(call: &ToolCall) -> Result<Syscall, SyscallError> {
        let text = call.arguments.trim();
        let args: Value = if text.is_empty() {
            json!({})
        } else {
            serde_json::from_str(text)
                .map_err(|e| invalid(format!("the arguments are not JSON: {e}")))?
        };
        if !args.is_object() {
            return Err(invalid("the arguments must be a JSON object"));
        }
        match call.name.as_str() {
            "spawn" => {
                let prompt = args["prompt"]
                    .as_str()
                    .filter(|p| !p.trim().is_empty())
                    .ok_or_else(|| invalid("spawn needs a non-empty string `prompt`"))?;
                let system = match &args["system"] {
                    Value::Null => None,
                    Value::String(s) => Some(s.clone()).filter(|s| !s.is_empty()),
                    _ => return Err(invalid("`system` must be a string")),
                };
                let max_tokens = match &args["max_tokens"] {
                    Value::Null => None,
                    v => Some(
                        v.as_u64()
                            .filter(|n| (1..=u64::from(u32::MAX)).contains(n))
                            .ok_or_else(|| invalid("`max_tokens` must be a positive integer"))?
                            as u32,
                    ),
                };
                Ok(Syscall::Spawn {
                    prompt: prompt.to_string(),
                    system,
                    max_tokens,
                })
            }
            "wait" => Ok(Syscall::Wait(pid_of(&args)?)),
            "kill" => Ok(Syscall::Kill(pid_of(&args)?)),
            "ps" => Ok(Syscall::Ps),
            other => Err(invalid(format!(
                "no such system call {other:?} (there are spawn, wait, kill and ps)"
            ))),
        }
    }
}

/// The `pid` argument: a positive integer (a numeric string is taken too, as models write them).
fn pid_of(args: &Value) -> Result<Pid, SyscallError> {
    let pid = match &args["pid"] {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    pid.filter(|p| *p > 0)
        .map(Pid)
        .ok_or_else(|| invalid("needs a positive integer `pid`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(name: &str, arguments: &str) -> ToolCall {
        ToolCall {
            id: "c".into(),
            name: name.into(),
            arguments: arguments.into(),
        }
    }

    #[test]
    fn well_formed_calls_are_read() {
        assert_eq!(
            Syscall::parse(&call("spawn", r#"{"prompt":"p","max_tokens":5}"#)),
            Ok(Syscall::Spawn {
                prompt: "p".into(),
                system: None,
                max_tokens: Some(5)
            })
        );
        assert_eq!(
            Syscall::parse(&call("wait", r#"{"pid":"7"}"#)),
            Ok(Syscall::Wait(Pid(7)))
        );
        assert_eq!(
            Syscall::parse(&call("kill", r#"{"pid":3}"#)),
            Ok(Syscall::Kill(Pid(3)))
        );
        assert_eq!(Syscall::parse(&call("ps", "")), Ok(Syscall::Ps));
    }

    #[test]
    fn malformed_calls_are_einval() {
        for (name, args) in [
            ("spawn", "{"),
            ("spawn", "[]"),
            ("spawn", r#"{"prompt":""}"#),
            ("spawn", r#"{"prompt":"p","max_tokens":0}"#),
            ("spawn", r#"{"prompt":"p","system":3}"#),
            ("wait", r#"{"pid":-1}"#),
            ("wait", r#"{}"#),
            ("fork", "{}"),
        ] {
            let err = Syscall::parse(&call(name, args)).unwrap_err();
            assert_eq!(err.errno, "EINVAL", "{name}({args})");
            assert!(err.result().contains("\"error\":\"EINVAL\""));
        }
    }
}
