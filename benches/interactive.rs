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
//!
//! With swap on (the server saves slot caches to a directory, the kernel's `[swap] dir` names it),
//! the whole comparison runs [`RUNS`] times in a row: `interactive_ttft_p99_gain_runN` is each run's
//! gain, and `interactive_ttft_p99_gain` the worst of them (the target holds only if it holds in
//! every run).

#[allow(dead_code)] // each bench binary uses part of the support code
#[path = "support/mod.rs"]
mod support;

use llmkernel::config::{KernelConfig, PolicyKind, SwapConfig};
use llmkernel::llm::{Backend, BackendKind, BackendSettings, Generation, StreamEvent};
use llmkernel::proto::{
    ChatMessage, ExitStatus, ProcessType, Request, Response, Role, SubmitRequest,
};
use llmkernel::shell::client::Client;
use std::path::{Path, PathBuf};
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
/// Consecutive runs of the whole comparison, each reported.
const RUNS: usize = 5;
const RUN_KEYS: [&str; RUNS] = [
    "interactive_ttft_p99_gain_run1",
    "interactive_ttft_p99_gain_run2",
    "interactive_ttft_p99_gain_run3",
    "interactive_ttft_p99_gain_run4",
    "interactive_ttft_p99_gain_run5",
];
/// Context per slot: a background story and its prompt fit with room to spare.
const CONTEXT_PER_SLOT: u32 = 2048;

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

/// One round through a fresh kernel with swap in `swap_dir` (stopping it ends its background
/// processes too).
async fn kernel_round(url: &str, swap_dir: &Path) -> Vec<Option<Duration>> {
    let kernel = BenchKernel::start(KernelConfig {
        backend_url: url.to_string(),
        cpus: SLOTS,
        quantum_tokens: QUANTUM_TOKENS,
        policy: PolicyKind::Priority,
        max_connections: 4096,
        max_connections_per_uid: 4096,
        swap: SwapConfig {
            dir: Some(swap_dir.to_path_buf()),
            ..SwapConfig::default()
        },
        ..KernelConfig::default()
    });
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

/// TTFT p50 and p99 of both sides of one run, and its failures.
struct Run {
    direct: (Duration, Duration),
    through: (Duration, Duration),
    gain: Option<f64>,
    direct_failed: usize,
    kernel_failed: usize,
    asked: usize,
}

/// One run: [`ROUNDS`] rounds a side, alternating.
async fn one_run(url: &str, swap_dir: &Path) -> Run {
    let (mut direct, mut through) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        direct.extend(direct_round(url).await);
        through.extend(kernel_round(url, swap_dir).await);
    }
    let asked = direct.len();
    let ((mut direct, direct_failed), (mut through, kernel_failed)) =
        (answered(direct), answered(through));
    let d = (percentile(&mut direct, 0.5), percentile(&mut direct, 0.99));
    let k = (
        percentile(&mut through, 0.5),
        percentile(&mut through, 0.99),
    );
    // With no answer on a side there is no time to compare.
    let gain =
        (!direct.is_empty() && !through.is_empty()).then(|| d.1.as_secs_f64() / k.1.as_secs_f64());
    Run {
        direct: d,
        through: k,
        gain,
        direct_failed,
        kernel_failed,
        asked,
    }
}

/// Where the server saves slot caches (and the kernel finds them): under target/bench.
fn swap_dir() -> PathBuf {
    let dir = summary::dir().join("interactive-swap");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("swap dir");
    dir
}

#[tokio::main]
async fn main() {
    let swap = swap_dir();
    let swap_arg = swap.display().to_string();
    let server = match support::llama::start(
        SLOTS,
        CONTEXT_PER_SLOT,
        &["--slot-save-path", &swap_arg],
    )
    .await
    {
        Ok(s) => s,
        Err(why) => {
            let figure = |key| Figure {
                key,
                value: None,
                target: TARGET,
                note: why.clone(),
            };
            let mut figures: Vec<Figure> = RUN_KEYS.iter().map(|k| figure(k)).collect();
            figures.push(figure(KEY));
            figures.push(Figure {
                key: FAILED_KEY,
                value: None,
                target: "<= 0",
                note: why,
            });
            summary::record(&figures);
            return;
        }
    };
    let mut runs = Vec::new();
    for i in 0..RUNS {
        let run = one_run(&server.url, &swap).await;
        eprintln!("interactive run {}: gain {:?}", i + 1, run.gain);
        runs.push(run);
        // Recorded after every run: a bench stopped part way keeps the runs it finished.
        summary::record(&figures(&runs));
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&swap);
}

/// The summary's figures for `runs`.
fn figures(runs: &[Run]) -> Vec<Figure> {
    let mut figures = Vec::new();
    for (run, key) in runs.iter().zip(RUN_KEYS) {
        figures.push(Figure {
            key,
            value: run.gain,
            target: TARGET,
            note: format!(
                "TTFT p50/p99 direct (FIFO) {:.0}/{:.0} ms, through the kernel {:.0}/{:.0} ms; \
                 failed or empty answers: {} direct, {} through the kernel, of {}",
                ms(run.direct.0),
                ms(run.direct.1),
                ms(run.through.0),
                ms(run.through.1),
                run.direct_failed,
                run.kernel_failed,
                run.asked
            ),
        });
    }
    let gains: Vec<String> = runs
        .iter()
        .map(|r| r.gain.map_or("-".into(), |g| format!("{g:.1}")))
        .collect();
    // The worst run; none when a run had no answers on a side.
    let worst = runs
        .iter()
        .map(|r| r.gain)
        .try_fold(f64::INFINITY, |w, g| g.map(|g| w.min(g)));
    let (direct_failed, kernel_failed, asked) = runs.iter().fold((0, 0, 0), |(d, k, a), r| {
        (d + r.direct_failed, k + r.kernel_failed, a + r.asked)
    });
    let failures = format!(
        "failed or empty answers: {direct_failed} of {asked} direct, {kernel_failed} of {asked} \
         through the kernel (left out of the times)"
    );
    figures.push(Figure {
        key: KEY,
        value: worst,
        target: TARGET,
        note: format!(
            "the worst of {} of {RUNS} consecutive runs with swap on (gains {}); each run: llama-server \
             -np {SLOTS} --slot-save-path, SmolLM2-135M; {SLOTS} background streams of \
             {BACKGROUND_TOKENS} tokens; {ROUNDS} rounds a side, alternating, of {QUESTIONS} \
             questions one a second; kernel quantum {QUANTUM_TOKENS}, [swap] dir set; {failures}",
            runs.len(),
            gains.join(", ")
        ),
    });
    figures.push(Figure::new(
        FAILED_KEY,
        (direct_failed + kernel_failed) as f64,
        "<= 0",
        failures,
    ));
    figures
}
