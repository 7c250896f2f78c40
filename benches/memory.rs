//! Memory per waiting process beyond its prompt: a counting global allocator around creating
//! 100,000 processes in the kernel state (process table, run queue and policy), with the prompts
//! allocated beforehand so that what is counted is the kernel's own bookkeeping. The baseline is the
//! prompt itself (moved in, not copied). Allocator headers are not counted. Run with `scripts/bench`
//! (or `cargo bench --bench memory`).

#[allow(dead_code)] // each bench binary uses part of the support code
#[path = "support/mod.rs"]
mod support;

use llmkernel::config::{KernelConfig, PolicyKind};
use llmkernel::kernel::process::Spec;
use llmkernel::kernel::scheduler::Scheduler;
use llmkernel::kernel::state::KernelState;
use llmkernel::proto::ProcessType;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
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
