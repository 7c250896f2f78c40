//! Pipes, redirections, `&&`/`||` and process groups, through the `llmsh` binary: each query of a
//! pipeline reads the whole answer before it after its own prompt, the files of redirections are
//! read and written by llmsh, a pipeline is one job and one process group, and a pipeline survives
//! a crash of the kernel.

mod crash;
mod groups;
mod interactive;
mod shell;

use crate::support::TestKernel;
use crate::support::config_file;
use crate::support::fake_llm::{FakeConfig, FakeLlm};

/// A kernel whose failing requests fail at once (one try), so a failure is quick to provoke with
/// the fake's `[status=500]`.
async fn start(config: FakeConfig, args: &[&str]) -> (FakeLlm, TestKernel, tempfile::TempDir) {
    let fake = FakeLlm::start(config).await;
    let (dir, path) = config_file("[backend]\nrequest_attempts = 1\n");
    let mut all = vec!["--config", path.as_str()];
    all.extend_from_slice(args);
    let k = TestKernel::start(&fake.url, &all).await;
    (fake, k, dir)
}

/// The user message the fake saw for the request whose prompt starts with `prompt`.
fn asked(fake: &FakeLlm, prompt: &str) -> String {
    fake.requests()
        .iter()
        .map(|r| r.user_prompt())
        .find(|p| p.starts_with(prompt))
        .unwrap_or_else(|| panic!("no request for {prompt:?}"))
}
