//! What the OpenAI-compatible front door adds to an interactive request: time to first token of a
//! streamed chat completion over the front door's Unix socket (HTTP/1.1, server-sent events) minus
//! the same answer's through the kernel's own socket client, one request at a time as an interactive
//! user makes them, both sides on one kernel and one fake server, alternating in rounds so that a
//! change in the machine's load hits both. Each request opens its own connection on either side, as
//! an app asking one question does.
//!
//! `front_door_added_ms_p50` (target ≤ 1 ms). Run with `scripts/bench` (or `cargo bench --bench
//! front_door`).

#[allow(dead_code)] // each bench binary uses part of the support code
#[path = "support/mod.rs"]
mod support;

use llmkernel::config::KernelConfig;
use llmkernel::proto::{ProcessType, Request, Response, SubmitRequest};
use llmkernel::shell::client::Client;
use std::path::Path;
use std::time::{Duration, Instant};
use support::fake_openai::FakeOpenAi;
use support::kernel::BenchKernel;
use support::stats::{percentile, us};
use support::summary::{self, Figure};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Rounds each side runs (round 0 warms both and is not counted).
const ROUNDS: usize = 5;
/// Requests per side and round.
const PER_ROUND: usize = 60;
/// When the backend's first token comes: a fast GPU server's time to first token.
const FIRST_TOKEN: Duration = Duration::from_millis(5);
/// Tokens per answer (only the first is timed).
const ANSWER_TOKENS: u32 = 4;
/// What a streamed chunk with text holds, in the front door's key order: `{"content":"` then text.
const TEXT_DELTA: &[u8] = b"{\"content\":\"";

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    runtime.block_on(async {
        let fake = FakeOpenAi::start();
        fake.set_token_delay(FIRST_TOKEN);
        let kernel = BenchKernel::start(KernelConfig {
            backend_url: fake.url.clone(),
            cpus: 4,
            ..KernelConfig::default()
        });
        let door = kernel.socket.with_file_name("k-http.sock");
        let (mut socket, mut http) = (Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            let mut s = Vec::with_capacity(PER_ROUND);
            let mut h = Vec::with_capacity(PER_ROUND);
            for _ in 0..PER_ROUND {
                s.push(socket_ttft(&kernel.socket).await);
                h.push(http_ttft(&door).await);
            }
            if round > 0 {
                socket.extend(s);
                http.extend(h);
            }
        }
        kernel.stop();
        let (s, h) = (percentile(&mut socket, 0.5), percentile(&mut http, 0.5));
        let (s99, h99) = (percentile(&mut socket, 0.99), percentile(&mut http, 0.99));
        let added_ms = (us(h) - us(s)) / 1000.0;
        summary::record(&[Figure::new(
            "front_door_added_ms_p50",
            added_ms,
            "<= 1",
            format!(
                "interactive (one request at a time, a connection each), first token {} ms after the \
                 request, {} samples a side: socket client p50 {:.0} us, front door p50 {:.0} us; \
                 p99 {:.0} us vs {:.0} us",
                FIRST_TOKEN.as_millis(),
                socket.len(),
                us(s),
                us(h),
                us(s99),
                us(h99)
            ),
        )]);
    });
}

/// Time to first token through the kernel's socket: connect, submit, the first text.
async fn socket_ttft(socket: &Path) -> Duration {
    let start = Instant::now();
    let mut client = Client::connect(socket).await.expect("connect");
    let submit = Request::Submit(SubmitRequest {
        prompt: "hello".into(),
        system: None,
        process_type: ProcessType::User,
        max_tokens: Some(ANSWER_TOKENS),
        nice: 0,
        attach: true,
    });
    client.send(submit).await.expect("submit");
    let mut first = None;
    loop {
        match client.recv().await.expect("reply") {
            Response::Output(chunk) if !chunk.text.is_empty() => {
                first.get_or_insert_with(|| start.elapsed());
            }
            Response::Exited(_) => break,
            _ => {}
        }
    }
    first.unwrap_or_else(|| start.elapsed())
}

/// Time to first token through the front door: connect, POST a streamed chat completion, the first
/// chunk with text; then the rest of the answer, to its end.
async fn http_ttft(door: &Path) -> Duration {
    let body = format!(
        r#"{{"messages":[{{"role":"user","content":"hello"}}],"stream":true,"max_tokens":{ANSWER_TOKENS}}}"#
    );
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let start = Instant::now();
    let mut stream = tokio::net::UnixStream::connect(door)
        .await
        .expect("connect to the front door");
    stream.write_all(request.as_bytes()).await.expect("send");
    let (mut seen, mut buf, mut first) = (Vec::new(), [0u8; 4096], None);
    loop {
        let n = stream.read(&mut buf).await.expect("read");
        if n == 0 {
            break;
        }
        if first.is_none() {
            seen.extend_from_slice(&buf[..n]);
            if has_text(&seen) {
                first = Some(start.elapsed());
            }
        }
    }
    assert!(
        seen.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&seen)
    );
    first.unwrap_or_else(|| start.elapsed())
}

/// Whether the bytes so far hold a chunk with text (the first chunk's `"content":""` has none).
fn has_text(seen: &[u8]) -> bool {
    seen.windows(TEXT_DELTA.len() + 1)
        .any(|w| w.starts_with(TEXT_DELTA) && w[TEXT_DELTA.len()] != b'"')
}
