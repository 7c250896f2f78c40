//! llama-server's memory endpoints in the fake: `/apply-template` (the conversation as words with role
//! markers, as the fake's prompt cache counts it), `/tokenize` (one token per word), and
//! `/slots/N?action=save|restore` over the per-slot prompt cache, writing a file per save into
//! `slot_save_dir` (refused without one, as llama-server without `--slot-save-path`). With
//! `lossy_restore` a restore answers as if it worked but leaves the slot empty. A restore reads the
//! file, so a file saved before a kernel restart (or by another server) restores as written.

use super::Inner;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;

pub(super) async fn apply_template(
    State(inner): State<Arc<Inner>>,
    body: bytes::Bytes,
) -> Response {
    let now = std::time::Instant::now();
    inner.counters.lock().unwrap().counted_at.push(now);
    if inner.config.lock().unwrap().count_after_generation {
        // Bounded: a kernel that never asks for a generation gets its answer after 10 s.
        for _ in 0..1000 {
            if !inner.counters.lock().unwrap().requests.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "bad json").into_response();
    };
    let messages: Vec<(String, String)> = body["messages"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|m| {
                    let text = |k: &str| m[k].as_str().unwrap_or("").to_string();
                    (text("role"), text("content"))
                })
                .collect()
        })
        .unwrap_or_default();
    let words = super::completions::prompt_words(&messages);
    axum::Json(json!({ "prompt": words.join(" ") })).into_response()
}

pub(super) async fn tokenize(State(_): State<Arc<Inner>>, body: bytes::Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "bad json").into_response();
    };
    let n = body["content"]
        .as_str()
        .unwrap_or("")
        .split_whitespace()
        .count();
    let tokens: Vec<usize> = (0..n).collect();
    axum::Json(json!({ "tokens": tokens })).into_response()
}

pub(super) async fn slot_action(
    State(inner): State<Arc<Inner>>,
    Path(slot): Path<u64>,
    uri: Uri,
    body: bytes::Bytes,
) -> Response {
    let action = uri
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("action=")))
        .unwrap_or("")
        .to_string();
    let filename = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|b| b["filename"].as_str().map(str::to_string))
        .unwrap_or_default();
    let config = inner.config.lock().unwrap().clone();
    let Some(dir) = config.slot_save_dir else {
        let error = json!({ "error": { "code": 501, "message": "This server does not support slot save/restore" } });
        return (StatusCode::NOT_IMPLEMENTED, axum::Json(error)).into_response();
    };
    let mut c = inner.counters.lock().unwrap();
    c.slot_actions.push(format!("{action} {filename}"));
    let answer = match action.as_str() {
        "save" => {
            let held = c.slot_cache.get(&slot).cloned().unwrap_or_default();
            let bytes = held.join(" ").into_bytes();
            if std::fs::write(dir.join(&filename), &bytes).is_err() {
                return (StatusCode::INTERNAL_SERVER_ERROR, "cannot write").into_response();
            }
            let n = held.len();
            c.saved.insert(filename.clone(), held);
            json!({ "id_slot": slot, "filename": filename, "n_saved": n, "n_written": bytes.len(), "timings": { "save_ms": 1.0 } })
        }
        "restore" => {
            // From the file, as llama-server does: a file saved before a restart, or by another
            // server on the same path, restores too.
            let from_disk = std::fs::read_to_string(dir.join(&filename))
                .ok()
                .map(|text| {
                    text.split(' ')
                        .filter(|t| !t.is_empty())
                        .map(str::to_string)
                        .collect()
                });
            let Some(held) = from_disk.or_else(|| c.saved.get(&filename).cloned()) else {
                return (StatusCode::BAD_REQUEST, "failed to restore slot").into_response();
            };
            let n = held.len();
            let kept = if config.lossy_restore {
                Vec::new()
            } else {
                held
            };
            c.slot_cache.insert(slot, kept);
            json!({ "id_slot": slot, "filename": filename, "n_restored": n, "n_read": n * 3, "timings": { "restore_ms": 1.0 } })
        }
        _ => return (StatusCode::BAD_REQUEST, "invalid action").into_response(),
    };
    drop(c);
    inner.changed.notify_waiters();
    axum::Json(answer).into_response()
}
