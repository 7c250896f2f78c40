//! What the scheduler wins on a real server: interactive time to first token while background work
//! fills every slot of a real llama-server (SmolLM2-135M from `scripts/llama-server`'s cache).
//!
//! Direct: background streams and interactive questions go straight to llama-server, which serves
//! them first come, first served: a question waits for a background answer to end. Through the
//! kernel: background runs as HOUSEKEEPING processes and questions as USER processes, on a kernel with
//! as many slots as the server and a quantum of [`QUANTUM_TOKENS`]: a question waits for the next
//! quantum boundary. Both sides use the same prompts, the same lengths and the same arrival times,
//! in alternating rounds (generation speed here moves with the machine's load);
//! `interactive_ttft_p99_gain` is direct p99 over kernel p99. A question that fails or comes back
//! empty is a failure, not a fast sample: it is left out of the times and counted, per side, in
//! `interactive_failed_answers` (target 0) and in the gain's note. Skipped, with a note, when the
//! cache is missing. Run with `scripts/bench` (or `cargo bench --bench interactive`).

#[allow(dead_code)] // each bench binary uses part of the support code
#[path = "support/mod.rs"]
mod support;

use llmkernel::config::PolicyKind;
use llmkernel::llm::{Backend, BackendKind, BackendSettings, Generation, StreamEvent};
use llmkernel::proto::{
    ChatMessage, ExitStatus, ProcessType, Request, Response, Role, SubmitRequest,
};
use llmkernel::shell::client::Client;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use support::kernel::BenchKernel;
use support::stats::percentile;
use support::summary::{self, Figure};

const SLOTS: u32 = 4;
const QUANTUM_TOKENS: u32 = 8;
const BACKGROUND_TOKENS: u32 = 384;
const BACKGROUND_PROMPT: &str =
    "Write a very long and detailed story about a dragon who learns to bake bread.";
/// Rounds each side runs, alternating, so that a change in the machine's load hits both.
const ROUNDS: usize = 3;
/// Questions per round.
const QUESTIONS: usize = 12;
const QUESTION_GAP: Duration = Duration::from_millis(1000);
const QUESTION_TOKENS: u32 = 4;
const QUESTION_PROMPT: &str = "Name a colour.";
/// Background work runs this long before the first question, so every slot is busy.
const WARMUP: Duration = Duration::from_secs(2);
const KEY: &str = "interactive_ttft_p99_gain";
const TARGET: &str = ">= 10";
const FAILED_KEY: &str = "interactive_failed_answers";

/// A llama-server of our own on a free port; killed when dropped.
struct LlamaServer {
    child: Child,
    url: String,
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts llama-server from the cache, or says why not.
async fn llama_server() -> Result<LlamaServer, String> {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(Path::new(root).join("scripts/llama-server"))
        .arg("paths")
        .output()
        .map_err(|e| format!("cannot run scripts/llama-server: {e}"))?;
    let paths = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = paths.lines();
    let (Some(bin), Some(model), true) = (lines.next(), lines.next(), out.status.success()) else {
        return Err("skipped: llama-server is not set up (run scripts/llama-server setup)".into());
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let ctx = (2048 * SLOTS).to_string();
    let child = Command::new(bin)
        .args([
            "-m",
            model,
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
        ])
        .args(["-np", &SLOTS.to_string(), "-c", &ctx])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start llama-server: {e}"))?;
    let server = LlamaServer {
        child,
        url: format!("http://127.0.0.1:{port}/v1"),
    };
    let health = format!("http://127.0.0.1:{port}/health");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !reqwest::get(&health)
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        if Instant::now() > deadline {
            return Err("llama-server did not get ready in 120 s".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(server)
}

/// A plain client straight to the server: no slot pinning, so the server queues first come, first served.
fn direct_backend(url: &str) -> Arc<Backend> {
    Arc::new(Backend::new(BackendSettings {
        url: url.to_string(),
        model: None,
        api_key: None,
        connect_timeout: Duration::from_secs(5),
        first_token_timeout: Duration::from_secs(600),
        token_timeout: Duration::from_secs(60),
        kind: BackendKind::OpenAi,
    }))
}

fn generation(prompt: &str, max_tokens: u32) -> Generation {
    Generation {
        messages: vec![ChatMessage {
            role: Role::User,
            content: prompt.into(),
        }],
        max_tokens,
        slot: 0,
        priority: 0,
        model: None,
        params: None,
    }
}

/// Time to the first token of one answer straight from the server (read to its end); `None` when
/// the request or the stream failed, or no text came.
async fn direct_answer(backend: &Backend, prompt: &str, max_tokens: u32) -> Option<Duration> {
    let start = Instant::now();
    let mut stream = backend.open(&generation(prompt, max_tokens)).await.ok()?;
    let mut first = None;
    while let Some(event) = stream.next().await {
        match event {
            Ok(StreamEvent::Text(text)) if !text.is_empty() => {
                first.get_or_insert_with(|| start.elapsed());
            }
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    first
}

/// Time to the first token of one process through the kernel (followed to its end); `None` when it
/// did not finish well or printed nothing.
async fn kernel_answer(
    socket: &Path,
    t: ProcessType,
    prompt: &str,
    max_tokens: u32,
) -> Option<Duration> {
    let mut client = Client::connect(socket).await.expect("connect");
    let start = Instant::now();
    let submit = SubmitRequest {
        prompt: prompt.into(),
        system: None,
        process_type: t,
        max_tokens: Some(max_tokens),
        nice: 0,
        attach: true,
    };
    client.send(Request::Submit(submit)).await.expect("submit");
    let mut first = None;
    loop {
        match client.recv().await {
            Ok(Response::Output(chunk)) if !chunk.text.is_empty() => {
                first.get_or_insert_with(|| start.elapsed());
            }
            Ok(Response::Exited(exited)) if exited.status == ExitStatus::Finished => break,
            Ok(Response::Exited(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
    first
}

/// Runs `background` on every slot without pause, and after [`WARMUP`] asks [`QUESTIONS`] questions
/// one every [`QUESTION_GAP`] (whether or not earlier ones have been answered); returns their times
/// to first token, `None` for each that failed.
async fn under_load<B, BF, Q, QF>(background: B, question: Q) -> Vec<Option<Duration>>
where
    B: Fn() -> BF + Clone + Send + 'static,
    BF: Future<Output = ()> + Send,
    Q: Fn() -> QF,
    QF: Future<Output = Option<Duration>> + Send + 'static,
{
    let stop = Arc::new(AtomicBool::new(false));
    let loops: Vec<_> = (0..SLOTS)
        .map(|_| {
            let background = background.clone();
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    background().await;
                }
            })
        })
        .collect();
    tokio::time::sleep(WARMUP).await;
    let mut asked = Vec::new();
    let mut tick = tokio::time::interval(QUESTION_GAP);
    for _ in 0..QUESTIONS {
        tick.tick().await;
        asked.push(tokio::spawn(question()));
    }
    let mut ttft = Vec::new();
    for q in asked {
        // A question task that panicked is a failed answer too.
        ttft.push(q.await.ok().flatten());
    }
    stop.store(true, Ordering::Relaxed);
    for l in loops {
        l.abort();
    }
    ttft
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// One round of the direct side: background and questions straight to the server.
async fn direct_round(url: &str) -> Vec<Option<Duration>> {
    let backend = direct_backend(url);
    let background = Arc::clone(&backend);
    under_load(
        move || {
            let b = Arc::clone(&background);
            async move {
                direct_answer(&b, BACKGROUND_PROMPT, BACKGROUND_TOKENS).await;
            }
        },
        || {
            let b = Arc::clone(&backend);
            async move { direct_answer(&b, QUESTION_PROMPT, QUESTION_TOKENS).await }
        },
    )
    .await
}

/// One round through a fresh kernel (stopping it ends its background processes too).
async fn kernel_round(url: &str) -> Vec<Option<Duration>> {
    let kernel = BenchKernel::for_backend(url, SLOTS, QUANTUM_TOKENS, PolicyKind::Priority);
    let socket = kernel.socket.clone();
    let background = socket.clone();
    let ttft =
        under_load(
            move || {
                let s = background.clone();
                async move {
                    let t = ProcessType::Housekeeping;
                    kernel_answer(&s, t, BACKGROUND_PROMPT, BACKGROUND_TOKENS).await;
                }
            },
            || {
                let s = socket.clone();
                async move {
                    kernel_answer(&s, ProcessType::User, QUESTION_PROMPT, QUESTION_TOKENS).await
                }
            },
        )
        .await;
    kernel.stop();
    ttft
}

/// The answered questions' times, and how many failed.
fn answered(samples: Vec<Option<Duration>>) -> (Vec<Duration>, usize) {
    let total = samples.len();
    let times: Vec<Duration> = samples.into_iter().flatten().collect();
    let failed = total - times.len();
    (times, failed)
}

#[tokio::main]
async fn main() {
    let server = match llama_server().await {
        Ok(s) => s,
        Err(why) => {
            summary::record(&[
                Figure {
                    key: KEY,
                    value: None,
                    target: TARGET,
                    note: why.clone(),
                },
                Figure {
                    key: FAILED_KEY,
                    value: None,
                    target: "<= 0",
                    note: why,
                },
            ]);
            return;
        }
    };
    let (mut direct, mut through) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        direct.extend(direct_round(&server.url).await);
        through.extend(kernel_round(&server.url).await);
    }
    drop(server);
    let asked = direct.len();
    let ((mut direct, direct_failed), (mut through, kernel_failed)) =
        (answered(direct), answered(through));
    let failures = format!(
        "failed or empty answers: {direct_failed} of {asked} direct, {kernel_failed} of {asked} \
         through the kernel (left out of the times)"
    );
    let (d50, d99) = (percentile(&mut direct, 0.5), percentile(&mut direct, 0.99));
    let (k50, k99) = (
        percentile(&mut through, 0.5),
        percentile(&mut through, 0.99),
    );
    // With no answer on a side there is no time to compare.
    let gain =
        (!direct.is_empty() && !through.is_empty()).then(|| d99.as_secs_f64() / k99.as_secs_f64());
    summary::record(&[
        Figure {
            key: KEY,
            value: gain,
            target: TARGET,
            note: format!(
                "llama-server -np {SLOTS}, SmolLM2-135M; {SLOTS} background streams of {BACKGROUND_TOKENS} tokens; \
                 {ROUNDS} rounds a side, alternating, of {QUESTIONS} questions one a second; TTFT p50/p99 direct \
                 (FIFO) {:.0}/{:.0} ms, through the kernel (quantum {QUANTUM_TOKENS}) {:.0}/{:.0} ms; {failures}",
                ms(d50),
                ms(d99),
                ms(k50),
                ms(k99)
            ),
        },
        Figure::new(
            FAILED_KEY,
            (direct_failed + kernel_failed) as f64,
            "<= 0",
            failures,
        ),
    ]);
}
