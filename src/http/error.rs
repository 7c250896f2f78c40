//! Errors in OpenAI's JSON shape (`{"error": {"message", "type", "code"}}`) with the status a client
//! library acts on: 400 for a bad request, 401/403 for who may not, 404, 429 with `Retry-After` when
//! the run queue is full, 502/503/504 for the backend, and `x-should-retry: false` on an answer
//! that ended because a user killed its process, so an SDK's automatic retry never undoes a kill.

use crate::proto::{Failure, FailureKind, Pid};
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The header naming the process behind a response.
pub const PID_HEADER: &str = "x-llmkernel-pid";

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub code: Option<&'static str>,
    pub message: String,
    /// Seconds for `Retry-After`.
    pub retry_after: Option<u64>,
    /// Sends `x-should-retry: false`.
    pub final_answer: bool,
    pub pid: Option<Pid>,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            kind,
            code: None,
            message: message.into(),
            retry_after: None,
            final_answer: false,
            pid: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "permission_error", message)
    }

    pub fn unauthorized() -> ApiError {
        let mut e = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "a valid `Authorization: Bearer KEY` from the kernel's keys file is required",
        );
        e.code = Some("invalid_api_key");
        e
    }

    /// The answer ended by a signal: final, never retried.
    pub fn killed(pid: Pid, message: String) -> ApiError {
        let mut e = ApiError::new(StatusCode::CONFLICT, "process_killed", message);
        e.code = Some("killed");
        e.final_answer = true;
        e.pid = Some(pid);
        e
    }

    /// The body of the error, also sent as an SSE event when a stream ends in error.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": null,
                "code": self.code,
            }
        })
    }
}

impl From<Failure> for ApiError {
    fn from(f: Failure) -> ApiError {
        let (status, kind) = match f.kind {
            FailureKind::BadRequest | FailureKind::BadFrame | FailureKind::VersionMismatch => {
                (StatusCode::BAD_REQUEST, "invalid_request_error")
            }
            FailureKind::NoSuchProcess => (StatusCode::NOT_FOUND, "not_found_error"),
            FailureKind::PermissionDenied => (StatusCode::FORBIDDEN, "permission_error"),
            FailureKind::QueueFull => (StatusCode::TOO_MANY_REQUESTS, "rate_limit_error"),
            // A prompt that does not fit a slot's context: OpenAI answers 400 for that too.
            FailureKind::OutOfMemory => (StatusCode::BAD_REQUEST, "invalid_request_error"),
            FailureKind::Unavailable | FailureKind::ShuttingDown => {
                (StatusCode::SERVICE_UNAVAILABLE, "server_error")
            }
        };
        let mut e = ApiError::new(status, kind, f.message);
        if f.kind == FailureKind::OutOfMemory {
            e.code = Some("context_length_exceeded");
        }
        if f.kind == FailureKind::QueueFull {
            e.code = Some("queue_full");
            // The queue drains at the backend's pace; a second is the shortest sensible wait.
            e.retry_after = Some(1);
        }
        e
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        let headers = response.headers_mut();
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.final_answer {
            headers.insert("x-should-retry", HeaderValue::from_static("false"));
        }
        if let Some(pid) = self.pid {
            headers.insert(PID_HEADER, HeaderValue::from(pid.0));
        }
        response
    }
}

/// Unknown paths, in the same shape.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found_error",
        format!("no such endpoint: {}", uri.path()),
    )
}
