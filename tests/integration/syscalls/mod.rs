//! System calls for LLM processes, through the `llmsh` binary against the fake server scripted to
//! emit tool calls (`<<call NAME ARGS>>`, `<<turn>>` between answers; see the fake's `structured`):
//! a spawned child runs and a `wait` hands its answer back, several spawns run side by side while
//! the caller waits blocked, limits and bad calls are tool errors, killing a caller kills its
//! children, and a caller waiting on two children survives a crash of the kernel.

mod calls;
mod crash;
mod http;
mod limits;

use crate::support::fake_llm::{FakeConfig, FakeLlm, Recorded};
use crate::support::{TestKernel, config_file};
use serde_json::Value;

/// A kernel on a fresh table (the first process is pid 1), with the config text `extra` (top-level
/// keys, then any sections).
async fn start(config: FakeConfig, extra: &str) -> (FakeLlm, TestKernel, tempfile::TempDir) {
    let fake = FakeLlm::start(config).await;
    let (dir, path) = config_file(&format!("{extra}\n[backend]\nrequest_attempts = 1\n"));
    let k = TestKernel::start(&fake.url, &["--config", path.as_str()]).await;
    (fake, k, dir)
}

/// A kernel (config text `extra`) against a fake server taking `delay_ms` a token, running
/// `query --syscalls SCRIPT` in the background as pid 1.
async fn started_caller(
    delay_ms: u64,
    extra: &str,
    script: &str,
) -> (FakeLlm, TestKernel, tempfile::TempDir) {
    let slow = FakeConfig {
        delay: std::time::Duration::from_millis(delay_ms),
        ..Default::default()
    };
    let (fake, k, cfg) = start(slow, extra).await;
    let run = k.sh(&format!("query --syscalls '{script}' &")).await;
    assert_eq!(crate::support::job_pid(&run.stdout), 1, "{run:?}");
    (fake, k, cfg)
}

/// The tool results of `pid`'s output (`[tool result ID] JSON` lines), parsed, in order.
fn results(cat: &str) -> Vec<Value> {
    cat.lines()
        .filter_map(|l| l.strip_prefix("[tool result "))
        .filter_map(|l| l.split_once("] "))
        .map(|(_, json)| serde_json::from_str(json).expect("a JSON result"))
        .collect()
}

/// The requests whose first user message starts with `prompt`, in order.
fn requests_for(fake: &FakeLlm, prompt: &str) -> Vec<Recorded> {
    fake.requests()
        .into_iter()
        .filter(|r| r.user_prompt().starts_with(prompt))
        .collect()
}
