//! `POST /v1/chat/completions` of the fake server: records the request, answers with a fault when one
//! is due, and otherwise streams the tokens `t{start}..t{end}` as server-sent events from a task of
//! its own, so that a client hanging up is noticed (and counted) at once.

use super::{Counters, ESCAPES, Fault, Inner, Recorded, ServerKind, tokens_in};
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

type Chunks = mpsc::Sender<Result<bytes::Bytes, std::io::Error>>;

/// One answer to stream, as the request and the server's settings decide it.
struct Answer {
    /// The request's index in the fake's records.
    index: usize,
    recorded: Recorded,
    /// The conversation's words (what a pinned slot's cache then holds).
    words: Vec<String>,
    prompt_tokens: usize,
    prefill: Duration,
    delay: Duration,
    /// Token indices to send: `start..end` of a whole answer of `total`.
    start: usize,
    end: usize,
    total: usize,
    /// The assistant prefix to send back first (llama-server's echo).
    echo: Option<String>,
    fault: Option<Fault>,
    /// Bytes of `x` after each token's name (`[pad=N]`), for answers of megabytes in few tokens.
    pad: usize,
    /// The conversation does not fit the slot's context: refused.
    too_long: bool,
}

pub(super) async fn completions(State(inner): State<Arc<Inner>>, body: bytes::Bytes) -> Response {
    let body: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("bad json: {e}")).into_response(),
    };
    let crash = inner.crash.lock().unwrap().clone();
    let answer = plan(&inner, body);
    inner.changed.notify_waiters();
    if let Some(refusal) = refusal(&inner, &answer, &crash).await {
        return refusal;
    }
    {
        let mut c = inner.counters.lock().unwrap();
        c.active += 1;
        c.max_active = c.max_active.max(c.active);
    }
    inner.changed.notify_waiters();
    // One chunk in flight: the stream task notices at once when the client stops reading.
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(stream(inner, answer, tx, crash));
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Records the request and decides its answer (and whether the fault hits it).
fn plan(inner: &Inner, body: Value) -> Answer {
    let config = inner.config.lock().unwrap().clone();
    let recorded = Recorded {
        body,
        at: std::time::Instant::now(),
    };
    let words = prompt_words(&recorded.messages());
    let mut c = inner.counters.lock().unwrap();
    c.requests.push(recorded.clone());
    let prompt_tokens = prompt_cost(&c, &recorded, &words);
    c.prefilled += prompt_tokens;
    if let Some(slot) = recorded.id_slot() {
        c.slot_cache.insert(slot, words.clone());
    }
    let fault = config
        .fault
        .clone()
        .filter(|_| config.fault_limit.is_none_or(|n| c.faulted < n));
    c.faulted += usize::from(fault.is_some());
    let index = c.requests.len() - 1;
    drop(c);
    let prompt = recorded.user_prompt();
    let total = directive(&prompt, "tokens").map_or(config.tokens, |n| n as usize);
    let prefix = match recorded.messages().last() {
        Some((role, content)) if role == "assistant" => content.clone(),
        _ => String::new(),
    };
    let start = if prefix.is_empty() {
        0
    } else {
        tokens_in(&prefix)
    };
    let max = recorded.body["max_tokens"].as_u64().unwrap_or(u64::MAX) as usize;
    let end = if fault == Some(Fault::IgnoreMaxTokens) {
        total
    } else {
        total.min(start.saturating_add(max))
    };
    // The slot's context ends the answer, whatever max_tokens says (llama-server says `length`).
    let end = end.min(start + config.context.saturating_sub(words.len()));
    Answer {
        index,
        too_long: words.len() >= config.context,
        words,
        prompt_tokens,
        prefill: config.prefill * prompt_tokens as u32,
        delay: directive(&prompt, "delay").map_or(config.delay, Duration::from_millis),
        start,
        end,
        total,
        echo: config.echo_prefix.then_some(prefix),
        fault,
        pad: directive(&prompt, "pad").map_or(0, |n| n as usize),
        recorded,
    }
}

/// The answer instead of a stream, if there is one: a vLLM refusing priorities, an injected HTTP
/// error; a first-byte delay waits here.
async fn refusal(inner: &Inner, answer: &Answer, crash: &CancellationToken) -> Option<Response> {
    let kind = inner.config.lock().unwrap().kind.clone();
    let rejects_priority = ServerKind::Vllm {
        rejects_priority: true,
    };
    if kind == rejects_priority && answer.recorded.priority().is_some() {
        let message = "Got priority 1 but Priority scheduling is not enabled.";
        return Some((StatusCode::BAD_REQUEST, message).into_response());
    }
    if answer.too_long {
        let message = "the request exceeds the available context size, try increasing it";
        return Some((StatusCode::BAD_REQUEST, message).into_response());
    }
    if let Some(code) = directive(&answer.recorded.user_prompt(), "status") {
        let status = StatusCode::from_u16(code as u16).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Some((status, "injected failure for this prompt").into_response());
    }
    match &answer.fault {
        Some(Fault::NotStreamed) => {
            let text: String = (answer.start..answer.end)
                .map(|i| format!("t{i} "))
                .collect();
            let whole = json!({
                "object": "chat.completion",
                "choices": [{ "index": 0, "message": { "role": "assistant", "content": text }, "finish_reason": "stop" }],
            });
            Some(axum::Json(whole).into_response())
        }
        Some(Fault::NotStreamedTrickle) => Some(trickle(StatusCode::OK, "application/json")),
        Some(Fault::TrickleStatus(code)) => {
            let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            Some(trickle(status, "text/plain"))
        }
        Some(Fault::Status(code)) => {
            let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let text = match directive(&answer.recorded.user_prompt(), "escapes") {
                Some(_) => format!("injected failure {ESCAPES}"),
                None => "injected failure".to_string(),
            };
            Some((status, text).into_response())
        }
        Some(Fault::RetryAfter { status, value }) => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::TOO_MANY_REQUESTS);
            let header = [(header::RETRY_AFTER, value.clone())];
            Some((status, header, "injected failure").into_response())
        }
        Some(Fault::FirstByteDelay(delay)) => tokio::select! {
            () = tokio::time::sleep(*delay) => None,
            () = crash.cancelled() => Some(broken_response()),
        },
        _ => None,
    }
}

/// Streams the answer's tokens, applying a mid-stream fault, then the usage chunk and `[DONE]`.
async fn stream(inner: Arc<Inner>, answer: Answer, tx: Chunks, crash: CancellationToken) {
    let mut guard = StreamGuard {
        inner,
        finished: false,
    };
    let keep_alive = bytes::Bytes::from(": keep-alive comment\n\n");
    if tx.send(Ok(keep_alive)).await.is_err() {
        return;
    }
    if !answer.prefill.is_zero() {
        tokio::time::sleep(answer.prefill).await;
    }
    let mut held = answer.words.clone();
    let shape = super::structured::Shape::of(&answer.recorded.body);
    let escapes = directive(&answer.recorded.user_prompt(), "escapes").is_some();
    for (n, i) in (answer.start..answer.end).enumerate() {
        if !mid_stream_fault(answer.fault.as_ref(), n, &tx, &crash).await
            || !pause(answer.delay, &tx, &crash).await
        {
            return;
        }
        let mut text = format!("t{i}{} ", "x".repeat(answer.pad));
        if n == 0
            && let Some(echo) = &answer.echo
        {
            text = format!("{echo}{text}");
        }
        if escapes {
            text = format!("{ESCAPES}{text}");
        }
        let chunk = shape.token_chunk(&text);
        if tx.send(Ok(sse(chunk))).await.is_err() {
            return;
        }
        let mut c = guard.inner.counters.lock().unwrap();
        c.log.push((answer.index, i));
        held.push(format!("t{i}"));
        if let Some(slot) = answer.recorded.id_slot() {
            c.slot_cache.insert(slot, held.clone());
        }
    }
    for chunk in shape.tool_chunks(answer.index) {
        if tx.send(Ok(sse(chunk))).await.is_err() {
            return;
        }
    }
    let (sent, prompt) = (answer.end - answer.start, answer.prompt_tokens);
    let finish_reason = if answer.end < answer.total {
        "length"
    } else {
        "stop"
    };
    let cached = answer.words.len() - prompt;
    let last = json!({
        "choices": shape.finish(finish_reason),
        "usage": { "prompt_tokens": prompt, "completion_tokens": sent, "total_tokens": prompt + sent },
        "timings": { "cache_n": cached, "prompt_n": prompt, "predicted_n": sent },
    });
    let done = bytes::Bytes::from("data: [DONE]\n\n");
    if tx.send(Ok(sse(last))).await.is_ok() && tx.send(Ok(done)).await.is_ok() {
        guard.finished = true;
    }
}

/// Applies a fault due before the `n`th token of this stream. Returns whether the stream goes on.
async fn mid_stream_fault(
    fault: Option<&Fault>,
    n: usize,
    tx: &Chunks,
    crash: &CancellationToken,
) -> bool {
    match fault {
        Some(Fault::StallAfter(k)) if n == *k => {
            // Hold the connection open without sending until the client gives up (or a crash).
            hold(tx, crash).await;
            false
        }
        Some(Fault::MalformedAfter(k)) if n == *k => {
            let _ = tx.send(Ok(bytes::Bytes::from("data: {not json\n\n"))).await;
            hold(tx, crash).await;
            false
        }
        Some(Fault::ResetAfter(k)) if n == *k => {
            let _ = tx.send(Err(std::io::Error::other("reset"))).await;
            false
        }
        Some(Fault::HugeLineAfter(k)) if n == *k => {
            let block = bytes::Bytes::from(vec![b'x'; 64 * 1024]);
            let mut sent = tx.send(Ok(bytes::Bytes::from("data: "))).await.is_ok();
            for _ in 0..1024 {
                sent = sent && tx.send(Ok(block.clone())).await.is_ok();
            }
            if sent {
                hold(tx, crash).await;
            }
            false
        }
        Some(Fault::EmptyChunksAfter(k)) if n == *k => {
            let empty = json!({ "choices": [{ "index": 0, "delta": {} }] });
            loop {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(10)) => {}
                    () = crash.cancelled() => return false,
                }
                if tx.send(Ok(sse(empty.clone()))).await.is_err() {
                    return false;
                }
            }
        }
        Some(Fault::InvalidUtf8After(k)) if n == *k => {
            let bad = b"data: {\"choices\":[{\"delta\":{\"content\":\"\xff\xfe\"}}]}\n\n";
            let _ = tx.send(Ok(bytes::Bytes::from_static(bad))).await;
            hold(tx, crash).await;
            false
        }
        _ => true,
    }
}

/// Keeps the stream open until the client closes it, or breaks it off when the server crashes.
async fn hold(tx: &Chunks, crash: &CancellationToken) {
    tokio::select! {
        () = tx.closed() => {}
        () = crash.cancelled() => {
            let _ = tx.send(Err(std::io::Error::other("crashed"))).await;
        }
    }
}

/// Waits the per-token delay. Returns `false` (after breaking the stream) if the server crashed.
async fn pause(delay: Duration, tx: &Chunks, crash: &CancellationToken) -> bool {
    let crashed = if delay.is_zero() {
        crash.is_cancelled()
    } else {
        tokio::select! {
            () = tokio::time::sleep(delay) => false,
            () = crash.cancelled() => true,
        }
    };
    if crashed {
        let _ = tx.send(Err(std::io::Error::other("crashed"))).await;
    }
    !crashed
}

/// A response with `status` whose body comes one byte every 100 ms and never ends: a server stuck
/// while it answers.
pub(super) fn trickle(status: StatusCode, content_type: &'static str) -> Response {
    let bytes = futures::stream::unfold((), |()| async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        Some((Ok::<_, std::io::Error>(bytes::Bytes::from_static(b" ")), ()))
    });
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from_stream(bytes))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// A response whose body breaks off at once, as from a server that crashed while answering.
fn broken_response() -> Response {
    let stream =
        futures::stream::once(async { Err::<bytes::Bytes, _>(std::io::Error::other("crashed")) });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The conversation as words, ending where the answer goes on (`assistant:` and its text so far).
pub(super) fn prompt_words(messages: &[(String, String)]) -> Vec<String> {
    let mut words = Vec::new();
    for (role, content) in messages {
        words.push(format!("{role}:"));
        words.extend(content.split_whitespace().map(str::to_string));
    }
    if messages.last().is_none_or(|(role, _)| role != "assistant") {
        words.push("assistant:".into());
    }
    words
}

/// Prompt tokens to process for a request: all of them, less the prefix the pinned slot's cache holds.
fn prompt_cost(c: &Counters, recorded: &Recorded, words: &[String]) -> usize {
    let cached = match (recorded.id_slot(), recorded.cache_prompt()) {
        (Some(slot), Some(true)) => c.slot_cache.get(&slot).map_or(0, |held| {
            held.iter().zip(words).take_while(|(a, b)| a == b).count()
        }),
        _ => 0,
    };
    words.len() - cached
}

/// Reads `[key=value]` directives from a prompt.
fn directive(prompt: &str, key: &str) -> Option<u64> {
    let start = prompt.find(&format!("[{key}="))? + key.len() + 2;
    prompt[start..].split(']').next()?.parse().ok()
}

/// Marks a stream that ends early (the client hung up) when dropped before `finished`.
struct StreamGuard {
    inner: Arc<Inner>,
    finished: bool,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let mut c = self.inner.counters.lock().unwrap();
        c.active -= 1;
        if self.finished {
            c.completed += 1;
        } else {
            c.disconnects += 1;
        }
        drop(c);
        self.inner.changed.notify_waiters();
    }
}

fn sse(value: Value) -> bytes::Bytes {
    bytes::Bytes::from(format!("data: {value}\n\n"))
}
