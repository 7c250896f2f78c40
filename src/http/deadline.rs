//! A request's deadline on the front door: the `X-LLMKernel-Deadline` header (`30s`, `500ms`, `2m`,
//! or bare seconds), else the body's `deadline` (the same text, or a number of seconds); soft with
//! `X-LLMKernel-Deadline-Soft: 1` or the body's `deadline_soft: true`. The header wins over the
//! body, as the other `X-LLMKernel-*` headers do. Neither field reaches the backend.

use super::error::ApiError;
use crate::proto::Deadline;
use axum::http::HeaderMap;
use serde_json::{Map, Value};

/// The body's fields this module reads.
pub const BODY_FIELDS: &[&str] = &["deadline", "deadline_soft"];

/// The deadline a request asks for, if any.
pub fn parse(body: &Map<String, Value>, headers: &HeaderMap) -> Result<Option<Deadline>, ApiError> {
    let within_ms = match headers.get("x-llmkernel-deadline") {
        Some(v) => {
            let text = v.to_str().unwrap_or("").trim();
            Some(
                Deadline::parse_duration_ms(text)
                    .map_err(|e| ApiError::bad_request(format!("X-LLMKernel-Deadline: {e}")))?,
            )
        }
        None => body_deadline(body.get("deadline"))?,
    };
    let soft = match headers.get("x-llmkernel-deadline-soft") {
        Some(v) => matches!(v.as_bytes(), b"1" | b"true" | b"yes"),
        None => match body.get("deadline_soft") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(ApiError::bad_request("`deadline_soft` must be a boolean")),
        },
    };
    Ok(within_ms.map(|within_ms| Deadline { within_ms, soft }))
}

fn body_deadline(value: Option<&Value>) -> Result<Option<u64>, ApiError> {
    let bad = |e: String| ApiError::bad_request(format!("`deadline`: {e}"));
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Deadline::parse_duration_ms(text).map(Some).map_err(bad),
        Some(Value::Number(n)) => {
            let text = format!("{}s", n.as_f64().unwrap_or(-1.0));
            Deadline::parse_duration_ms(&text).map(Some).map_err(bad)
        }
        Some(_) => Err(bad(
            "must be a duration like \"30s\" or a number of seconds".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).expect("test body")
    }

    #[test]
    fn the_header_wins_over_the_body_and_soft_is_read_from_either() {
        let mut headers = HeaderMap::new();
        let b = body(r#"{"deadline": 5, "deadline_soft": true}"#);
        assert_eq!(
            parse(&b, &headers).ok().flatten(),
            Some(Deadline {
                within_ms: 5000,
                soft: true
            })
        );
        headers.insert("x-llmkernel-deadline", "250ms".parse().expect("value"));
        headers.insert("x-llmkernel-deadline-soft", "0".parse().expect("value"));
        assert_eq!(
            parse(&b, &headers).ok().flatten(),
            Some(Deadline {
                within_ms: 250,
                soft: false
            })
        );
        assert_eq!(parse(&body("{}"), &HeaderMap::new()).ok(), Some(None));
    }

    #[test]
    fn malformed_deadlines_are_bad_requests_naming_where() {
        let mut headers = HeaderMap::new();
        headers.insert("x-llmkernel-deadline", "soon".parse().expect("value"));
        let err = parse(&body("{}"), &headers).expect_err("bad header");
        assert!(format!("{err:?}").contains("X-LLMKernel-Deadline"));
        for bad in [
            r#"{"deadline": -1}"#,
            r#"{"deadline": [1]}"#,
            r#"{"deadline_soft": 1}"#,
        ] {
            assert!(parse(&body(bad), &HeaderMap::new()).is_err(), "{bad}");
        }
    }
}
