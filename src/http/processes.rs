//! `/v1/processes`: the kernel's own endpoints, each the HTTP form of a socket verb and answered by
//! that verb's handler or the same state method, so the authorization is the same: the table as
//! `ps` shows it (`?all=1` for every user's), one process, its output so far, `DELETE` to kill,
//! `POST …/signal {"signal": "STOP"}` and `POST …/renice {"nice": 5}`.

use super::Door;
use super::error::ApiError;
use crate::kernel::server::Peer;
use crate::kernel::state::no_such_process;
use crate::kernel::verbs::{renice, signal, stat};
use crate::proto::{Pid, ProcessInfo, ReniceRequest, Response, Signal, SignalRequest, StatRequest};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::{Extension, Json};
use serde_json::{Value, json};

/// A row as JSON, with where the process came from.
fn row(info: &ProcessInfo, origin: Option<String>) -> Value {
    let mut v = serde_json::to_value(info).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut v {
        map.insert("origin".into(), json!(origin));
    }
    v
}

fn pid_of(text: &str) -> Result<Pid, ApiError> {
    text.parse()
        .map_err(|_| ApiError::bad_request(format!("{text:?} is not a pid")))
}

pub async fn list(
    State(door): State<Door>,
    Extension(peer): Extension<Peer>,
    uri: Uri,
) -> HttpResponse {
    let all = uri.query().is_some_and(|q| {
        q.split('&')
            .any(|kv| matches!(kv, "all=1" | "all=true" | "all"))
    });
    let (rows, cpus, policy) = door.kernel.read(|s| {
        let rows: Vec<Value> = s
            .list(peer.uid, all)
            .iter()
            .map(|info| row(info, s.origin_for(info.pid, peer.uid)))
            .collect();
        (rows, s.config.cpus, s.scheduler().policy_name().to_string())
    });
    Json(json!({ "object": "list", "cpus": cpus, "policy": policy, "data": rows })).into_response()
}

pub async fn one(
    State(door): State<Door>,
    Extension(peer): Extension<Peer>,
    Path(pid): Path<String>,
) -> HttpResponse {
    let pid = match pid_of(&pid) {
        Ok(pid) => pid,
        Err(e) => return e.into_response(),
    };
    match stat::handle(&door.kernel, peer, StatRequest { pid }) {
        Ok(Response::Processes(list)) => {
            let origin = door.kernel.read(|s| s.origin_for(pid, peer.uid));
            match list.processes.first() {
                Some(info) => Json(row(info, origin)).into_response(),
                None => ApiError::from(no_such_process(pid)).into_response(),
            }
        }
        Ok(_) => ApiError::from(no_such_process(pid)).into_response(),
        Err(failure) => ApiError::from(failure).into_response(),
    }
}

pub async fn output(
    State(door): State<Door>,
    Extension(peer): Extension<Peer>,
    Path(pid): Path<String>,
) -> HttpResponse {
    let pid = match pid_of(&pid) {
        Ok(pid) => pid,
        Err(e) => return e.into_response(),
    };
    match door.kernel.read(|s| s.output_of(pid, peer.uid)) {
        Ok(text) => text.into_response(),
        Err(failure) => ApiError::from(failure).into_response(),
    }
}

pub async fn kill(
    State(door): State<Door>,
    Extension(peer): Extension<Peer>,
    Path(pid): Path<String>,
) -> HttpResponse {
    deliver(door, peer, &pid, Signal::Kill).await
}

pub async fn signal(
    State(door): State<Door>,
    Extension(peer): Extension<Peer>,
    Path(pid): Path<String>,
    body: Bytes,
) -> HttpResponse {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let name = body.get("signal").and_then(Value::as_str).unwrap_or("");
    match Signal::parse(name) {
        Some(sig) => deliver(door, peer, &pid, sig).await,
        None => ApiError::bad_request(format!(
            "`signal` must name a signal such as \"STOP\", \"CONT\", \"TERM\" or \"KILL\", not {name:?}"
        ))
        .into_response(),
    }
}

async fn deliver(door: Door, peer: Peer, pid: &str, sig: Signal) -> HttpResponse {
    let pid = match pid_of(pid) {
        Ok(pid) => pid,
        Err(e) => return e.into_response(),
    };
    match signal::handle(&door.kernel, peer, SignalRequest { pid, signal: sig }).await {
        Ok(Response::Signalled(s)) => {
            Json(json!({ "pid": s.pid, "state": s.state })).into_response()
        }
        Ok(_) => Json(json!({ "pid": pid })).into_response(),
        Err(failure) => ApiError::from(failure).into_response(),
    }
}

pub async fn renice(
    State(door): State<Door>,
    Extension(peer): Extension<Peer>,
    Path(pid): Path<String>,
    body: Bytes,
) -> HttpResponse {
    let pid = match pid_of(&pid) {
        Ok(pid) => pid,
        Err(e) => return e.into_response(),
    };
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let Some(nice) = body
        .get("nice")
        .and_then(Value::as_i64)
        .and_then(|n| i8::try_from(n).ok())
    else {
        return ApiError::bad_request("`nice` must be a number from -20 to 19").into_response();
    };
    match renice::handle(&door.kernel, peer, ReniceRequest { pid, nice }).await {
        Ok(Response::Reniced(r)) => {
            Json(json!({ "pid": r.pid, "old_nice": r.old_nice, "new_nice": r.new_nice }))
                .into_response()
        }
        Ok(_) => Json(json!({ "pid": pid })).into_response(),
        Err(failure) => ApiError::from(failure).into_response(),
    }
}
