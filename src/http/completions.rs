//! `POST /v1/chat/completions` and `POST /v1/completions`: each request becomes a process, created
//! through the same checks and transition as `llmsh`'s `Submit` (limits, nice and type privileges,
//! the run queue's room), whose answer is then streamed or returned whole ([`super::answer`]).
//! Also `GET /v1/models` (the backend's list) and `GET /health`.

use super::Door;
use super::answer::{self, Answer};
use super::error::ApiError;
use super::request::{self, Flavor};
use crate::kernel::server::Peer;
use crate::kernel::verbs::submit::{self, NewProcess};
use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;

pub async fn chat(
    State(door): State<Door>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    complete(door, peer, Flavor::Chat, &headers, &body).await
}

pub async fn text(
    State(door): State<Door>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    complete(door, peer, Flavor::Text, &headers, &body).await
}

async fn complete(
    door: Door,
    peer: Peer,
    flavor: Flavor,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let plan = match request::parse(flavor, body, headers) {
        Ok(plan) => plan,
        Err(e) => return e.into_response(),
    };
    let kernel = door.kernel;
    let spec = match submit::validate(&kernel, peer, &plan.submit, &plan.ask) {
        Ok(spec) => spec,
        Err(failure) => return ApiError::from(failure).into_response(),
    };
    let model = plan
        .ask
        .model
        .clone()
        .or_else(|| kernel.read(|s| s.config.model.clone()))
        .unwrap_or_else(|| "llmkernel".into());
    // A process with system calls answers in text: its tools are the kernel's, not the client's.
    let structured = !plan.syscalls
        && plan
            .ask
            .params
            .as_deref()
            .and_then(|p| serde_json::from_str(p).ok())
            .is_some_and(|params| crate::llm::has_structured_parts(&params));
    let new = NewProcess {
        spec,
        ask: plan.ask,
        nice: plan.submit.nice,
    };
    let admitted = match submit::admit(&kernel, new).await {
        Ok(admitted) => admitted,
        Err(failure) => return ApiError::from(failure).into_response(),
    };
    let created = match submit::create_now(&kernel, peer, admitted, true) {
        Ok(created) => created,
        Err(failure) => return ApiError::from(failure).into_response(),
    };
    let follower = match created.follower {
        Some(Ok(follower)) => follower,
        Some(Err(failure)) => return ApiError::from(failure).into_response(),
        None => {
            let e = ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "no output",
            );
            return e.into_response();
        }
    };
    let pid = created.pid;
    // The answer owns the process from here: a client that leaves while the creation is synced
    // kills it too.
    let answer = Answer::new(
        Arc::clone(&kernel),
        pid,
        peer.uid,
        flavor,
        model,
        follower,
        plan.detach,
    )
    .structured(structured)
    .syscalls(plan.syscalls);
    if let Err(failure) = submit::settle(&kernel, pid, created.ack).await {
        return ApiError::from(failure).into_response();
    }
    if plan.stream {
        answer::streamed(answer, plan.include_usage)
    } else {
        answer::whole(answer).await
    }
}

/// The backend's model list as it gives it; the configured model when it lists none.
pub async fn models(State(door): State<Door>) -> Response {
    // Several backends: every model they serve.
    if let Some(list) = door.kernel.read(|s| s.pool_model_list()) {
        return axum::Json(list).into_response();
    }
    let backend = door.kernel.backend();
    match backend.models().await {
        Ok(Some(list)) => axum::Json(list).into_response(),
        Ok(None) => {
            let id = door
                .kernel
                .read(|s| s.config.model.clone())
                .unwrap_or_else(|| "llmkernel".into());
            let list = json!({ "object": "list", "data": [{ "id": id, "object": "model", "owned_by": "llmkernel" }] });
            axum::Json(list).into_response()
        }
        Err(e) => {
            let mut err = ApiError::new(StatusCode::BAD_GATEWAY, "server_error", e.to_string());
            err.code = Some("backend_unreachable");
            err.into_response()
        }
    }
}

/// Whether the kernel is up, and what it holds.
pub async fn health(State(door): State<Door>) -> Response {
    let status = door.kernel.status_line();
    axum::Json(json!({ "status": "ok", "kernel": status })).into_response()
}
