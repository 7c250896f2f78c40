//! Third-party clients against the front door: the official `openai` Python SDK (streaming iterator,
//! `.close()`, a whole answer, errors) and httpx, from the pinned venv of `scripts/python-clients`
//! (`.ci/run` sets it up). Skipped, with a note, where that venv has not been set up.

use super::client::http_socket;
use crate::support::TestKernel;
use crate::support::fake_llm::{FakeConfig, FakeLlm};
use std::path::PathBuf;

fn venv_python() -> Option<PathBuf> {
    let cache = std::env::var_os("LLMKERNEL_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("llmkernel")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/llmkernel")))?;
    let python = cache.join("venv/bin/python");
    python.exists().then_some(python)
}

#[tokio::test]
async fn the_official_openai_sdk_and_httpx_work_against_the_front_door() {
    let Some(python) = venv_python() else {
        eprintln!("skipped: no client venv; run scripts/python-clients setup");
        return;
    };
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let k = TestKernel::start(&fake.url, &[]).await;
    let tests = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/test_openai.py");
    let out = tokio::process::Command::new(python)
        .args(["-m", "unittest", "-v", tests])
        .env("LLMKERNEL_HTTP_SOCKET", http_socket(&k.socket))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients"))
        .kill_on_drop(true)
        .output()
        .await
        .expect("run python");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
}
