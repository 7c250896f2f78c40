//! Memory per waiting process beyond its prompt: a counting global allocator around creating
//! 100,000 processes in the kernel state (process table, run queue and policy), with the prompts
//! allocated beforehand so that what is counted is the kernel's own bookkeeping. The baseline is the
//! prompt itself (moved in, not copied). Allocator headers are not counted.
//!
//! Swap on a real llama-server (`--slot-save-path`, SmolLM2-135M from `scripts/llama-server`'s
//! cache): `swap_switch_gain` is the time to resume a switched-out conversation of about
//! [`CONVERSATION_TOKENS`] tokens by recomputing it over the time by restoring its saved slot cache,
//! through the calls the kernel makes (a slot pinned request, `save`, `restore`). The slot is taken
//! by another conversation between the save and the resume, as a switch does. Median of [`TRIALS`]
//! alternating trials a side; skipped with a note when llama-server is not set up. The server runs
//! with `--cache-ram 0`: recent llama-server builds keep recent prompts' caches in host memory
//! (`--cache-ram`, 8 GiB by default) and take a returning conversation from there, which is no
//! recompute; without it (turned off, or the conversation evicted, or the server restarted) a
//! switched-out conversation is evaluated again, which is what swap saves.
//!
//! Run with `scripts/bench` (or `cargo bench --bench memory`).

#[allow(dead_code)] // each bench binary uses part of the support code
#[path = "support/mod.rs"]
mod support;

use llmkernel::config::{KernelConfig, PolicyKind};
use llmkernel::kernel::process::Spec;
use llmkernel::kernel::scheduler::Scheduler;
use llmkernel::kernel::state::KernelState;
use llmkernel::llm::{Backend, BackendKind, BackendSettings, Generation, StreamEvent};
use llmkernel::proto::ProcessType;
use llmkernel::proto::{ChatMessage, Role};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};
use support::summary::{self, Figure};

const PROCESSES: usize = 100_000;
const PROMPT_BYTES: usize = 64;

/// Bytes allocated and not yet freed, by anyone in this process.
static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

/// The system allocator, counting.
struct Counting;

// SAFETY: every call is passed to the system allocator unchanged; the counter only observes sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Bytes the kernel state keeps per waiting process under `policy`, beyond the prompt.
fn bytes_per_process(policy: PolicyKind) -> f64 {
    let config = KernelConfig::default();
    let policy = llmkernel::kernel::make_policy(policy, &config);
    let mut state = KernelState::new(config, Scheduler::new(policy));
    let mut prompts: Vec<String> = (0..PROCESSES)
        .map(|i| format!("{i:0width$}", width = PROMPT_BYTES))
        .collect();
    let before = LIVE_BYTES.load(Ordering::Relaxed);
    for (i, prompt) in prompts.drain(..).enumerate() {
        let spec = Spec {
            uid: 1000 + (i % 7) as u32,
            process_type: ProcessType::ALL[i % ProcessType::ALL.len()],
            system: None,
            prompt,
            allowance: 1000,
        };
        state
            .create(spec, 0)
            .expect("no journal: creation cannot fail");
    }
    let after = LIVE_BYTES.load(Ordering::Relaxed);
    assert_eq!(state.waiting(), PROCESSES);
    drop(state);
    (after - before) as f64 / PROCESSES as f64
}

/// The conversation switched out and resumed: about this many tokens, as the issue measures.
const CONVERSATION_TOKENS: u32 = 1500;
/// Trials a side (recompute, restore), alternating.
const TRIALS: usize = 5;
/// Context of the one slot: the conversation and a little room.
const SWAP_CONTEXT: u32 = 4096;
const SWAP_KEY: &str = "swap_switch_gain";
const SWAP_TARGET: &str = ">= 3";
const SWAP_FILE: &str = "bench-swap.bin";

fn user(content: String) -> Vec<ChatMessage> {
    vec![ChatMessage {
        role: Role::User,
        content,
    }]
}

/// A conversation of at least [`CONVERSATION_TOKENS`] tokens as the server counts them.
async fn long_conversation(backend: &Backend) -> Result<(Vec<ChatMessage>, u32), String> {
    let mut text = String::from("Read these notes, then say which one mentions a lighthouse.\n");
    for i in 0.. {
        let messages = user(text.clone());
        if i % 20 == 0 {
            let n = backend
                .count_tokens(&messages)
                .await
                .ok_or("the server did not count tokens")?;
            if n >= CONVERSATION_TOKENS {
                return Ok((messages, n));
            }
        }
        text.push_str(&format!(
            "Note {i}: the harbour keeper counted {} boats and wrote the tide at {} metres.\n",
            i * 7 % 31,
            i % 9
        ));
    }
    unreachable!("the loop returns")
}

/// Time from sending `messages` on slot 0 to its first token (the resume's cost: the prompt the
/// server must evaluate first).
async fn first_token(backend: &Backend, messages: &[ChatMessage]) -> Result<Duration, String> {
    let generation = Generation {
        messages: messages.to_vec(),
        max_tokens: 2,
        slot: 0,
        priority: 0,
        model: None,
        params: None,
    };
    let start = Instant::now();
    let mut stream = backend.open(&generation).await.map_err(|e| e.to_string())?;
    let mut first = None;
    while let Some(event) = stream.next().await {
        match event {
            Ok(StreamEvent::Text(t)) if !t.is_empty() => {
                first.get_or_insert_with(|| start.elapsed());
            }
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(first.unwrap_or_else(|| start.elapsed()))
}

/// Recompute and restore times of resuming `conversation` after another took its slot.
async fn switch_trials(
    backend: &Backend,
    conversation: &[ChatMessage],
) -> Result<(Vec<Duration>, Vec<Duration>), String> {
    let other = user("Name a colour.".into());
    first_token(backend, conversation).await?;
    backend
        .save_slot(0, SWAP_FILE)
        .await
        .map_err(|e| format!("save: {e}"))?;
    let (mut recompute, mut restore) = (Vec::new(), Vec::new());
    for _ in 0..TRIALS {
        first_token(backend, &other).await?; // the switch: another conversation takes the slot
        recompute.push(first_token(backend, conversation).await?);
        first_token(backend, &other).await?;
        let start = Instant::now();
        backend
            .restore_slot(0, SWAP_FILE)
            .await
            .map_err(|e| format!("restore: {e}"))?;
        first_token(backend, conversation).await?;
        restore.push(start.elapsed());
    }
    Ok((recompute, restore))
}

/// `swap_switch_gain` on a real llama-server, or why it was not measured.
async fn swap_switch_gain() -> Figure {
    let skipped = |note: String| Figure {
        key: SWAP_KEY,
        value: None,
        target: SWAP_TARGET,
        note,
    };
    let dir = support::summary::dir().join("memory-swap");
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        return skipped(format!("cannot create {}: {e}", dir.display()));
    }
    let dir_arg = dir.display().to_string();
    let args = ["--slot-save-path", &dir_arg, "--cache-ram", "0"];
    let server = match support::llama::start(1, SWAP_CONTEXT, &args).await {
        Ok(s) => s,
        Err(why) => return skipped(why),
    };
    let backend = Backend::new(BackendSettings {
        url: server.url.clone(),
        model: None,
        api_key: None,
        connect_timeout: Duration::from_secs(5),
        first_token_timeout: Duration::from_secs(600),
        token_timeout: Duration::from_secs(60),
        kind: BackendKind::LlamaCpp,
    });
    let measured = match long_conversation(&backend).await {
        Ok((conversation, tokens)) => switch_trials(&backend, &conversation)
            .await
            .map(|(recompute, restore)| (tokens, recompute, restore)),
        Err(e) => Err(e),
    };
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    let (tokens, mut recompute, mut restore) = match measured {
        Ok(m) => m,
        Err(why) => return skipped(format!("not measured: {why}")),
    };
    let median = |v: &mut Vec<Duration>| support::stats::percentile(v, 0.5);
    let (by_recompute, by_restore) = (median(&mut recompute), median(&mut restore));
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    Figure::new(
        SWAP_KEY,
        by_recompute.as_secs_f64() / by_restore.as_secs_f64(),
        SWAP_TARGET,
        format!(
            "resume of a switched-out {tokens}-token conversation on llama-server (SmolLM2-135M, \
             --slot-save-path, --cache-ram 0 so that the server keeps no prompt cache of its own in \
             host memory): by recompute {:.0} ms, by restore {:.0} ms (restore and first \
             token), medians of {TRIALS} alternating trials",
            ms(by_recompute),
            ms(by_restore)
        ),
    )
}

fn main() {
    let mut per_policy = Vec::new();
    for policy in PolicyKind::ALL {
        per_policy.push((policy, bytes_per_process(policy)));
    }
    let default = per_policy
        .iter()
        .find(|(p, _)| *p == KernelConfig::default().policy)
        .map_or(0.0, |(_, b)| *b);
    let others: Vec<String> = per_policy
        .iter()
        .map(|(p, b)| format!("{p} {b:.0}"))
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let swap = runtime.block_on(swap_switch_gain());
    summary::record(&[swap]);
    summary::record(&[Figure::new(
        "queued_bytes_per_process",
        default,
        "<= 2048",
        format!(
            "{PROCESSES} waiting processes with {PROMPT_BYTES}-byte prompts, default policy; bytes by policy: {}",
            others.join(", ")
        ),
    )]);
}
