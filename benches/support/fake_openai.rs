//! A minimal OpenAI-compatible streaming server for the overhead benchmarks. It does as little as a
//! server can: `GET /v1/models` returns a constant, `POST /v1/chat/completions` reads `max_tokens` and
//! streams that many one-token chunks, the k-th at `k × token_delay` after the request (an absolute
//! schedule, so a late tick does not shift the rest), then `[DONE]`. Everything else is 404 (so the
//! kernel takes it for a plain OpenAI-compatible server). It runs on its own thread and runtime, so
//! it costs the same whoever calls it, and the difference between calling it directly and through
//! the kernel is the kernel's.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const TOKEN_CHUNK: &str = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok \"},\"finish_reason\":null}]}\n\n";
const LAST_CHUNK: &str = "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}\n\ndata: [DONE]\n\n";

/// A running fake server; it lives as long as the process.
pub struct FakeOpenAi {
    /// Base URL including `/v1`.
    pub url: String,
    token_delay_us: Arc<AtomicU64>,
}

impl FakeOpenAi {
    /// Starts the server on a thread of its own with a one-worker runtime.
    pub fn start() -> FakeOpenAi {
        FakeOpenAi::start_on(None)
    }

    /// As [`FakeOpenAi::start`], with the server's thread pinned to `cpu`.
    pub fn start_on(cpu: Option<usize>) -> FakeOpenAi {
        let delay = Arc::new(AtomicU64::new(0));
        let state = Arc::clone(&delay);
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new().name("bench-fake".into());
        let _ = thread.spawn(move || {
            super::affinity::pin(cpu);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("fake server runtime");
            runtime.block_on(async move {
                let app = Router::new()
                    .route("/v1/models", get(models))
                    .route("/v1/chat/completions", post(completions))
                    .with_state(state);
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind fake server");
                let addr = listener.local_addr().expect("local addr");
                tx.send(addr).expect("report address");
                axum::serve(listener, app).await.expect("fake server");
            });
        });
        let addr = rx.recv().expect("fake server started");
        FakeOpenAi {
            url: format!("http://{addr}/v1"),
            token_delay_us: delay,
        }
    }

    /// The time between two tokens of every answer from now on.
    pub fn set_token_delay(&self, delay: Duration) {
        self.token_delay_us
            .store(delay.as_micros() as u64, Ordering::Relaxed);
    }
}

async fn models() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        "{\"object\":\"list\",\"data\":[{\"id\":\"bench\",\"object\":\"model\",\"owned_by\":\"bench\"}]}",
    )
}

#[derive(serde::Deserialize)]
struct Request {
    max_tokens: Option<u64>,
}

async fn completions(State(delay): State<Arc<AtomicU64>>, body: Bytes) -> Response {
    let tokens = serde_json::from_slice::<Request>(&body)
        .ok()
        .and_then(|r| r.max_tokens)
        .unwrap_or(16);
    let delay = Duration::from_micros(delay.load(Ordering::Relaxed));
    let start = tokio::time::Instant::now();
    let chunks = futures::stream::unfold(0u64, move |k| async move {
        if k > tokens {
            return None;
        }
        if k < tokens && !delay.is_zero() {
            tokio::time::sleep_until(start + delay * (k as u32 + 1)).await;
        }
        let chunk = if k == tokens { LAST_CHUNK } else { TOKEN_CHUNK };
        Some((
            Ok::<_, std::convert::Infallible>(Bytes::from_static(chunk.as_bytes())),
            k + 1,
        ))
    });
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(chunks),
    )
        .into_response()
}
