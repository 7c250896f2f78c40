//! What the kernel costs on the path of a request, each figure against a baseline measured in the
//! same run, alternating the two in rounds so that a change in the machine's load hits both:
//!
//! - `rtt_*_ratio`: a `ps` of one process through the kernel, against a raw Unix-socket server that
//!   answers the same request bytes with the same reply bytes;
//! - `ttft_added_us_*`: time to first token through the kernel minus straight to the fake server with
//!   the same HTTP client the kernel uses, at 1,000 submissions a second (open loop);
//! - `stream_time_ratio`: a 1,000-token answer at 5 ms a token, through the kernel against direct;
//! - `throughput_ratio`: tokens a second with every slot busy, through the kernel against the same
//!   number of concurrent direct streams.
//!
//! The fake server ([`support::fake_openai`]) and the kernel each have their own runtime and
//! threads; the client side runs on this thread. Run with `scripts/bench` (or `cargo bench --bench
//! overhead`).

#[allow(dead_code)] // each bench binary uses part of the support code
#[path = "support/mod.rs"]
mod support;

use llmkernel::config::{KernelConfig, PolicyKind};
use llmkernel::llm::{Backend, Generation, StreamEvent};
use llmkernel::proto::{ChatMessage, ProcessType, Request, Response, Role, SubmitRequest};
use llmkernel::shell::client::Client;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::fake_openai::FakeOpenAi;
use support::kernel::BenchKernel;
use support::stats::{percentile, us};
use support::summary::{self, Figure};

#[path = "overhead/rtt.rs"]
mod rtt;
#[path = "overhead/ttft.rs"]
mod ttft;

/// Rounds each comparison alternates its two sides over.
const ROUNDS: usize = 4;
/// The long stream: tokens and the time between them.
const STREAM_TOKENS: u32 = 1_000;
const STREAM_TOKEN_DELAY: Duration = Duration::from_millis(5);
/// Saturation: slots (and concurrent streams), answers per stream and round, tokens, token delay.
const SLOTS: u32 = 4;
const ANSWERS_PER_WORKER: usize = 6;
const ANSWER_TOKENS: u32 = 250;
const ANSWER_TOKEN_DELAY: Duration = Duration::from_millis(2);

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    runtime.block_on(async {
        let fake = FakeOpenAi::start();
        // `cargo bench --bench overhead -- ttft` runs only the figures whose names hold `ttft`.
        let only: Vec<String> = std::env::args()
            .skip(1)
            .filter(|a| !a.starts_with("--"))
            .collect();
        let wanted = |name: &str| only.is_empty() || only.iter().any(|o| name.contains(o.as_str()));
        let mut figures = Vec::new();
        if wanted("rtt") {
            figures.extend(rtt::figures(&fake.url).await);
        }
        if wanted("ttft") {
            figures.extend(ttft::figures().await);
        }
        if wanted("stream_time") {
            figures.push(stream_time(&fake).await);
        }
        if wanted("throughput") {
            figures.push(throughput(&fake).await);
        }
        summary::record(&figures);
    });
}

/// The direct client: the kernel's own backend client, with the kernel's default settings, talking
/// straight to the server.
fn direct_backend(url: &str) -> Arc<Backend> {
    let config = KernelConfig {
        backend_url: url.to_string(),
        ..KernelConfig::default()
    };
    Arc::new(Backend::new(llmkernel::kernel::backend_settings(&config)))
}

fn generation(max_tokens: u32) -> Generation {
    Generation {
        messages: vec![ChatMessage {
            role: Role::User,
            content: "hello".into(),
        }],
        max_tokens,
        slot: 0,
        priority: 0,
        model: None,
        params: None,
    }
}

fn submit(max_tokens: u32) -> Request {
    Request::Submit(SubmitRequest {
        prompt: "hello".into(),
        system: None,
        process_type: ProcessType::User,
        max_tokens: Some(max_tokens),
        nice: 0,
        attach: true,
    })
}

/// One answer straight from the server: (time to first token, tokens).
async fn direct_answer(backend: &Backend, max_tokens: u32) -> (Duration, u32) {
    let start = Instant::now();
    let mut stream = backend.open(&generation(max_tokens)).await.expect("open");
    let (mut first, mut tokens) = (None, 0);
    while let Some(event) = stream.next().await {
        if let StreamEvent::Text(_) = event.expect("stream") {
            first.get_or_insert_with(|| start.elapsed());
            tokens += 1;
        }
    }
    (first.unwrap_or_else(|| start.elapsed()), tokens)
}

/// One answer through the kernel on `client`: (time to first token, tokens).
async fn kernel_answer(client: &mut Client, max_tokens: u32) -> (Duration, u32) {
    let start = Instant::now();
    client.send(submit(max_tokens)).await.expect("submit");
    let (mut first, mut tokens) = (None, 0);
    loop {
        match client.recv().await.expect("reply") {
            Response::Output(chunk) if !chunk.text.is_empty() => {
                first.get_or_insert_with(|| start.elapsed());
                tokens += 1;
            }
            Response::Exited(_) => break,
            _ => {}
        }
    }
    (first.unwrap_or_else(|| start.elapsed()), tokens)
}

/// A long paced answer, direct and through the kernel.
async fn stream_time(fake: &FakeOpenAi) -> Figure {
    fake.set_token_delay(STREAM_TOKEN_DELAY);
    let kernel = BenchKernel::for_backend(&fake.url, 1, 32, PolicyKind::Priority);
    let backend = direct_backend(&fake.url);
    let mut client = kernel.connect().await;
    direct_answer(&backend, 8).await;
    kernel_answer(&mut client, 8).await;
    let (mut direct, mut through) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..ROUNDS.min(3) {
        let start = Instant::now();
        let (_, tokens) = direct_answer(&backend, STREAM_TOKENS).await;
        direct += start.elapsed();
        assert_eq!(tokens, STREAM_TOKENS);
        let start = Instant::now();
        let (_, tokens) = kernel_answer(&mut client, STREAM_TOKENS).await;
        through += start.elapsed();
        assert_eq!(tokens, STREAM_TOKENS);
    }
    kernel.stop();
    let rounds = ROUNDS.min(3) as f64;
    Figure::new(
        "stream_time_ratio",
        through.as_secs_f64() / direct.as_secs_f64(),
        "<= 1.01",
        format!(
            "{STREAM_TOKENS} tokens at {} ms/token: direct {:.1} ms, through the kernel {:.1} ms (mean of {rounds})",
            STREAM_TOKEN_DELAY.as_millis(),
            direct.as_secs_f64() * 1e3 / rounds,
            through.as_secs_f64() * 1e3 / rounds
        ),
    )
}

/// Every slot busy: [`SLOTS`] concurrent streams, direct and through a kernel with as many slots.
async fn throughput(fake: &FakeOpenAi) -> Figure {
    fake.set_token_delay(ANSWER_TOKEN_DELAY);
    let kernel = BenchKernel::for_backend(&fake.url, SLOTS, 32, PolicyKind::Priority);
    let backend = direct_backend(&fake.url);
    let mut clients = Vec::new();
    for _ in 0..SLOTS {
        clients.push(kernel.connect().await);
    }
    let (mut direct, mut through) = ((0u64, Duration::ZERO), (0u64, Duration::ZERO));
    for _ in 0..ROUNDS.min(2) {
        let start = Instant::now();
        let workers: Vec<_> = (0..SLOTS)
            .map(|_| {
                let backend = Arc::clone(&backend);
                tokio::spawn(async move {
                    let mut tokens = 0u64;
                    for _ in 0..ANSWERS_PER_WORKER {
                        tokens += u64::from(direct_answer(&backend, ANSWER_TOKENS).await.1);
                    }
                    tokens
                })
            })
            .collect();
        for w in workers {
            direct.0 += w.await.expect("worker");
        }
        direct.1 += start.elapsed();
        let start = Instant::now();
        let workers: Vec<_> = clients
            .drain(..)
            .map(|mut client| {
                tokio::spawn(async move {
                    let mut tokens = 0u64;
                    for _ in 0..ANSWERS_PER_WORKER {
                        tokens += u64::from(kernel_answer(&mut client, ANSWER_TOKENS).await.1);
                    }
                    (tokens, client)
                })
            })
            .collect();
        for w in workers {
            let (tokens, client) = w.await.expect("worker");
            through.0 += tokens;
            clients.push(client);
        }
        through.1 += start.elapsed();
    }
    kernel.stop();
    let rate = |(tokens, time): (u64, Duration)| tokens as f64 / time.as_secs_f64();
    Figure::new(
        "throughput_ratio",
        rate(through) / rate(direct),
        ">= 0.99",
        format!(
            "{SLOTS} slots busy, answers of {ANSWER_TOKENS} tokens at {} ms/token: direct {:.0} tokens/s, through the kernel {:.0} tokens/s",
            ANSWER_TOKEN_DELAY.as_millis(),
            rate(direct),
            rate(through)
        ),
    )
}
