//! A fake OpenAI-compatible LLM server speaking real HTTP and server-sent events on loopback. Its
//! answer is the token sequence `t0 t1 t2 ...`, so a test can check that an output is one unbroken
//! answer. A request whose conversation ends with an assistant message continues after the tokens that
//! message already holds (echoing it first when `echo_prefix` is set, as llama-server does). Behaviour
//! is set per server ([`FakeConfig`]) or per prompt with directives like `[tokens=50]`, `[delay=20]`
//! (milliseconds per token), `[escapes=1]` (terminal escapes in every token and error text). It
//! records every request, and every stream the client dropped early.
//!
//! It can pass for llama-server ([`ServerKind::LlamaCpp`]: `owned_by: llamacpp`, `GET /props`, a prompt
//! cache per `id_slot` when `cache_prompt` is set) or vLLM ([`ServerKind::Vllm`]: `owned_by: vllm`,
//! optionally rejecting `priority` as a vLLM without priority scheduling does). Usage reports the
//! prompt tokens processed (words of the conversation, less what a slot had cached), and `prefill`
//! makes each such token cost time, so the price of a context switch shows. As llama-server it also
//! has a context per slot (`context` words: an answer stops there with `length`), counts tokens
//! (`/apply-template`, `/tokenize`: words), and saves and restores slot caches
//! (`/slots/N?action=save|restore`, into `slot_save_dir`; `lossy_restore` loses them silently).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

// An explicit path: the benches include this file by path too, where `mod` alone would look elsewhere.
#[path = "fake_llm/completions.rs"]
mod completions;
#[path = "fake_llm/memory.rs"]
mod memory;
#[path = "fake_llm/structured.rs"]
mod structured;

/// What a prompt with the `[escapes=1]` directive gets in every token and in an injected error's
/// text: a screen clear, an OSC 52 clipboard write ending in BEL, and a C1 CSI (U+009B).
pub const ESCAPES: &str = "\x1b[2J\x1b]52;c;eA==\x07\u{9b}31m";

/// A fault to inject (into every request, or the first [`FakeConfig::fault_limit`] of them).
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Answer with this HTTP status and no stream.
    Status(u16),
    /// Answer with this HTTP status and a `Retry-After` header of this value.
    RetryAfter { status: u16, value: String },
    /// Wait this long before answering at all (no headers, no first byte).
    FirstByteDelay(Duration),
    /// Ignore `max_tokens`: keep answering up to [`FakeConfig::tokens`].
    IgnoreMaxTokens,
    /// Stop sending (but keep the connection) after this many tokens.
    StallAfter(usize),
    /// Send a data line that is not JSON after this many tokens.
    MalformedAfter(usize),
    /// Close the connection without finishing after this many tokens.
    ResetAfter(usize),
    /// Answer with this HTTP status, then send its body one byte every 100 ms without end.
    TrickleStatus(u16),
    /// After this many tokens, start a data line that never ends (64 KiB at a time, up to 64 MiB).
    HugeLineAfter(usize),
    /// After this many tokens, send chunks with an empty delta every 10 ms without end.
    EmptyChunksAfter(usize),
    /// After this many tokens, send a chunk whose text is not UTF-8 (then hold the connection).
    InvalidUtf8After(usize),
    /// Answer with one JSON completion instead of a stream, as a server that cannot stream does.
    NotStreamed,
    /// Start a JSON completion, then send its body one byte every 100 ms without end.
    NotStreamedTrickle,
}

/// Which server the fake passes for.
#[derive(Clone, Debug, PartialEq)]
pub enum ServerKind {
    /// A plain OpenAI-compatible server.
    OpenAi,
    /// llama-server with this many slots.
    LlamaCpp { slots: u32 },
    /// vLLM; `rejects_priority` mimics one started without priority scheduling.
    Vllm { rejects_priority: bool },
}

#[derive(Clone, Debug)]
pub struct FakeConfig {
    pub kind: ServerKind,
    /// Time to process one prompt token that no slot cache holds.
    pub prefill: Duration,
    /// Tokens in a whole answer.
    pub tokens: usize,
    pub delay: Duration,
    pub fault: Option<Fault>,
    /// How many requests the fault hits before the server behaves; `None`: all of them.
    pub fault_limit: Option<usize>,
    pub echo_prefix: bool,
    pub model: String,
    /// How many `GET /v1/models` answers trickle (one byte every 100 ms without end) before the
    /// listing is answered at once.
    pub slow_models: usize,
    /// Tokens (words) one slot's context holds: an answer stops there with `length`, and a longer
    /// prompt is refused as llama-server refuses it.
    pub context: usize,
    /// llama-server's `--slot-save-path`: slot saves write files here; `None` refuses them.
    pub slot_save_dir: Option<std::path::PathBuf>,
    /// A restore reports success but leaves the slot's cache empty (as on sliding-window models).
    pub lossy_restore: bool,
    /// A prompt count (`/apply-template`) is answered only once a generation has been asked for
    /// (or after 10 s): a kernel that waits for the count before it starts the process gets it late.
    pub count_after_generation: bool,
}

impl Default for FakeConfig {
    fn default() -> Self {
        FakeConfig {
            kind: ServerKind::OpenAi,
            prefill: Duration::ZERO,
            tokens: 10,
            delay: Duration::ZERO,
            fault: None,
            fault_limit: None,
            echo_prefix: false,
            model: "fake-model".into(),
            slow_models: 0,
            context: 8192,
            slot_save_dir: None,
            lossy_restore: false,
            count_after_generation: false,
        }
    }
}

/// What the fake saw of one request.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub body: Value,
    /// When the request arrived.
    pub at: std::time::Instant,
}

impl Recorded {
    pub fn messages(&self) -> Vec<(String, String)> {
        self.body["messages"]
            .as_array()
            .map(|m| {
                m.iter()
                    .map(|m| {
                        (
                            m["role"].as_str().unwrap_or("").into(),
                            m["content"].as_str().unwrap_or("").into(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Tokens already in the trailing assistant message (where a resume continues), 0 for a fresh one.
    pub fn resumed_at(&self) -> usize {
        match self.messages().last() {
            Some((role, content)) if role == "assistant" => tokens_in(content),
            _ => 0,
        }
    }

    pub fn id_slot(&self) -> Option<u64> {
        self.body["id_slot"].as_u64()
    }

    pub fn cache_prompt(&self) -> Option<bool> {
        self.body["cache_prompt"].as_bool()
    }

    pub fn priority(&self) -> Option<i64> {
        self.body["priority"].as_i64()
    }

    pub fn user_prompt(&self) -> String {
        self.messages()
            .into_iter()
            .find(|(r, _)| r == "user")
            .map(|(_, c)| c)
            .unwrap_or_default()
    }
}

#[derive(Default)]
struct Counters {
    requests: Vec<Recorded>,
    /// Every token sent, in order: (request index, token index).
    log: Vec<(usize, usize)>,
    /// What each llama-server slot holds: the words of its last conversation and answer.
    slot_cache: std::collections::HashMap<u64, Vec<String>>,
    /// Prompt tokens processed (not cached), all requests together.
    prefilled: usize,
    props_requests: usize,
    models_requests: usize,
    /// Requests the fault has hit.
    faulted: usize,
    /// Slot caches saved, by file name.
    saved: std::collections::HashMap<String, Vec<String>>,
    /// Slot actions done, in order: `save FILE` or `restore FILE`.
    slot_actions: Vec<String>,
    disconnects: usize,
    completed: usize,
    active: usize,
    max_active: usize,
    /// When each `/apply-template` (the first half of a prompt count) arrived.
    counted_at: Vec<std::time::Instant>,
}

struct Inner {
    config: Mutex<FakeConfig>,
    counters: Mutex<Counters>,
    changed: Notify,
    /// Cancelled when the server is stopped: streams and held requests end as in a crash.
    crash: Mutex<CancellationToken>,
}

/// The serving task and its graceful-shutdown trigger.
struct Serving {
    task: tokio::task::JoinHandle<()>,
    stop: CancellationToken,
}

/// A running fake server; it stops when dropped. [`FakeLlm::stop`] and [`FakeLlm::restart`] take it
/// down and bring it back on the same port, as a backend that crashes and comes back.
pub struct FakeLlm {
    pub url: String,
    addr: std::net::SocketAddr,
    inner: Arc<Inner>,
    serving: Option<Serving>,
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.crash_token().cancel();
        if let Some(serving) = &self.serving {
            serving.task.abort();
        }
    }
}

impl FakeLlm {
    pub async fn start(config: FakeConfig) -> FakeLlm {
        let inner = Arc::new(Inner {
            config: Mutex::new(config),
            counters: Mutex::new(Counters::default()),
            changed: Notify::new(),
            crash: Mutex::new(CancellationToken::new()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake server");
        let addr = listener.local_addr().expect("local addr");
        FakeLlm {
            url: format!("http://{addr}/v1"),
            addr,
            serving: Some(serve(listener, inner.clone())),
            inner,
        }
    }

    fn crash_token(&self) -> CancellationToken {
        self.inner.crash.lock().unwrap().clone()
    }

    /// Takes the server down: streams in flight break off, held requests end, and the port refuses
    /// connections until [`FakeLlm::restart`].
    pub async fn stop(&mut self) {
        self.crash_token().cancel();
        if let Some(serving) = self.serving.take() {
            serving.stop.cancel();
            tokio::time::timeout(Duration::from_secs(20), serving.task)
                .await
                .expect("the fake server stops")
                .expect("fake server task");
        }
    }

    /// Brings a stopped server back on the same port, with its counters kept.
    pub async fn restart(&mut self) {
        assert!(self.serving.is_none(), "restart of a running fake server");
        *self.inner.crash.lock().unwrap() = CancellationToken::new();
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .expect("bind the fake server's port again");
        self.serving = Some(serve(listener, self.inner.clone()));
    }

    pub fn set(&self, f: impl FnOnce(&mut FakeConfig)) {
        f(&mut self.inner.config.lock().unwrap());
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.counters.lock().unwrap().requests.clone()
    }

    /// Every token sent, in order, as (request index, token index).
    pub fn token_log(&self) -> Vec<(usize, usize)> {
        self.inner.counters.lock().unwrap().log.clone()
    }

    /// Prompt tokens the fake had to process (those no slot cache held), all requests together.
    pub fn prefilled(&self) -> usize {
        self.inner.counters.lock().unwrap().prefilled
    }

    /// `GET /v1/models` requests seen.
    pub fn models_requests(&self) -> usize {
        self.inner.counters.lock().unwrap().models_requests
    }

    /// Slot saves and restores done, in order (`save FILE`, `restore FILE`).
    pub fn slot_actions(&self) -> Vec<String> {
        self.inner.counters.lock().unwrap().slot_actions.clone()
    }

    /// When each prompt count (`/apply-template`) arrived, in order.
    pub fn counted_at(&self) -> Vec<std::time::Instant> {
        self.inner.counters.lock().unwrap().counted_at.clone()
    }

    pub fn props_requests(&self) -> usize {
        self.inner.counters.lock().unwrap().props_requests
    }

    pub fn disconnects(&self) -> usize {
        self.inner.counters.lock().unwrap().disconnects
    }

    pub fn completed(&self) -> usize {
        self.inner.counters.lock().unwrap().completed
    }

    pub fn active(&self) -> usize {
        self.inner.counters.lock().unwrap().active
    }

    pub fn max_active(&self) -> usize {
        self.inner.counters.lock().unwrap().max_active
    }

    /// Waits until `cond` holds of the fake's counters, or panics after `timeout`.
    pub async fn wait_for(&self, what: &str, timeout: Duration, cond: impl Fn(&FakeLlm) -> bool) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.inner.changed.notified();
            if cond(self) {
                return;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                panic!("fake server: timed out waiting for {what}");
            }
        }
    }
}

fn serve(listener: tokio::net::TcpListener, inner: Arc<Inner>) -> Serving {
    let app = Router::new()
        .route("/v1/models", get(models))
        .route("/props", get(props))
        .route("/apply-template", post(memory::apply_template))
        .route("/tokenize", post(memory::tokenize))
        .route("/slots/{slot}", post(memory::slot_action))
        .route("/v1/chat/completions", post(completions::completions))
        .with_state(inner);
    let stop = CancellationToken::new();
    let signal = stop.clone();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { signal.cancelled().await })
            .await;
    });
    Serving { task, stop }
}

async fn models(State(inner): State<Arc<Inner>>) -> Response {
    let config = inner.config.lock().unwrap().clone();
    {
        let mut c = inner.counters.lock().unwrap();
        c.models_requests += 1;
        if c.models_requests <= config.slow_models {
            return completions::trickle(StatusCode::OK, "application/json");
        }
    }
    let owner = match config.kind {
        ServerKind::OpenAi => "fake",
        ServerKind::LlamaCpp { .. } => "llamacpp",
        ServerKind::Vllm { .. } => "vllm",
    };
    axum::Json(
        json!({ "object": "list", "data": [{ "id": config.model, "object": "model", "owned_by": owner }] }),
    )
    .into_response()
}

async fn props(State(inner): State<Arc<Inner>>) -> Response {
    let (kind, context, model) = {
        let config = inner.config.lock().unwrap();
        (config.kind.clone(), config.context, config.model.clone())
    };
    inner.counters.lock().unwrap().props_requests += 1;
    match kind {
        ServerKind::LlamaCpp { slots } => axum::Json(
            json!({ "total_slots": slots, "default_generation_settings": { "n_ctx": context }, "model_path": format!("/models/{model}.gguf") }),
        )
        .into_response(),
        _ => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

/// Tokens already in a continuation prefix (`t0 t1 ` holds 2).
fn tokens_in(prefix: &str) -> usize {
    prefix.split_inclusive(' ').count()
}

/// The whole answer for `n` tokens: `t0 t1 ... t{n-1} `.
pub fn answer(n: usize) -> String {
    (0..n).map(|i| format!("t{i} ")).collect()
}
