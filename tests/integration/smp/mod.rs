//! Several backends as one machine (SMP), end to end against several fake servers: each process
//! runs on a backend serving its model, a model no backend serves is refused naming those there
//! are, a backend that dies mid-answer hands its process to another with the answer unbroken, two
//! servers run twice the work at once, and SIGHUP adds one backend and removes another, whose work
//! drains to the new one.

mod failover;
mod managed;
mod reload;
mod swap;

use crate::support::TestKernel;
use crate::support::fake_llm::{FakeConfig, FakeLlm, Recorded, ServerKind};
use std::time::Duration;

/// A fake serving `model`, `delay_ms` a token, long answers.
pub(super) async fn fake(model: &str, delay_ms: u64) -> FakeLlm {
    FakeLlm::start(fake_config(model, delay_ms)).await
}

fn fake_config(model: &str, delay_ms: u64) -> FakeConfig {
    FakeConfig {
        model: model.into(),
        tokens: 2000,
        delay: Duration::from_millis(delay_ms),
        ..Default::default()
    }
}

/// A `[[backends]]` entry.
pub(super) fn entry(name: &str, url: &str) -> String {
    format!("[[backends]]\nname = \"{name}\"\nurl = \"{url}\"\n")
}

/// A kernel whose config file is `config` (backends from it only).
pub(super) async fn kernel(config: &str, args: &[&str]) -> TestKernel {
    let dir = tempfile::tempdir().expect("tempdir");
    let config_dir = dir.path().join("llmkernel");
    std::fs::create_dir_all(&config_dir).expect("config dir");
    std::fs::write(config_dir.join("config.toml"), config).expect("config");
    TestKernel::start_in(dir, "", args).await
}

/// Rewrites the kernel's config file (SIGHUP then reloads it).
pub(super) fn rewrite_config(k: &TestKernel, config: &str) {
    let path = k.dir.path().join("llmkernel").join("config.toml");
    std::fs::write(path, config).expect("rewrite config");
}

pub(super) async fn background(k: &TestKernel, command: &str) -> u64 {
    let run = k.sh(&format!("{command} &")).await;
    assert_eq!(run.status, 0, "{run:?}");
    crate::support::job_pid(&run.stdout)
}

/// The whole output of a process once it has finished.
pub(super) async fn final_output(k: &TestKernel, pid: u64) -> String {
    k.eventually("ps", &format!("{pid} to finish"), |ps| {
        crate::support::ps_row(ps, pid).is_some_and(|r| r[5].starts_with('Z'))
    })
    .await;
    let out = k.sh(&format!("cat {pid}")).await.stdout;
    assert_eq!(k.sh(&format!("wait {pid}")).await.status, 0);
    out.trim_end_matches('\n').to_string()
}

/// Waits until `pid` runs with at least `tokens` tokens of its answer.
pub(super) async fn running_with(k: &TestKernel, pid: u64, tokens: usize) {
    k.eventually("ps", &format!("{pid} under way"), |ps| {
        crate::support::ps_row(ps, pid).is_some_and(|r| {
            let used: usize = r[6]
                .split('/')
                .next()
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            r[5].starts_with('R') && used >= tokens
        })
    })
    .await;
}

fn asked_model(r: &Recorded) -> Option<String> {
    r.body["model"].as_str().map(String::from)
}

#[tokio::test]
async fn each_process_runs_on_a_backend_serving_its_model_and_an_unknown_model_is_refused() {
    let small = fake("small", 0).await;
    // A llama-server with two slots: the kernel learns them from its `/props`.
    let big = FakeLlm::start(FakeConfig {
        kind: ServerKind::LlamaCpp { slots: 2 },
        ..fake_config("big", 5)
    })
    .await;
    let config = format!("{}{}", entry("chat", &small.url), entry("batch", &big.url));
    let k = kernel(&config, &["--quantum", "8"]).await;
    let run = k.sh("query --model small --max-tokens 5 hi").await;
    assert_eq!(run.status, 0, "{run:?}");
    let long = background(
        &k,
        "query --model big --max-tokens 400 '[tokens=400] story'",
    )
    .await;
    let ps = k
        .eventually_wide("ps -l", "the big process on batch's slot", |ps| {
            ps.contains("batch:0")
        })
        .await;
    assert!(crate::support::ps_row(&ps, long).is_some(), "{ps}");
    let sched = k.sh_wide("sched").await.stdout;
    for expected in [
        "backends: 2",
        "chat",
        "batch",
        "small",
        "big",
        "up",
        "0/1",
        "1/2",
        "llamacpp",
    ] {
        assert!(sched.contains(expected), "{expected} in {sched}");
    }
    k.sh(&format!("kill {long}")).await;
    let refused = k.sh("query --model huge hello").await;
    assert_ne!(refused.status, 0);
    assert!(
        refused
            .stderr
            .contains("no backend serves the model `huge`")
            && refused.stderr.contains("big, small"),
        "{refused:?}"
    );
    let to_small: Vec<_> = small.requests().iter().filter_map(asked_model).collect();
    let to_big: Vec<_> = big.requests().iter().filter_map(asked_model).collect();
    assert_eq!(to_small, ["small"]);
    assert!(
        !to_big.is_empty() && to_big.iter().all(|m| m == "big"),
        "{to_big:?}"
    );
}

#[tokio::test]
async fn two_backends_given_as_repeated_flags_run_two_processes_at_once() {
    let one = fake("m", 5).await;
    let two = fake("m", 5).await;
    let k = TestKernel::start(&one.url, &["--backend", &two.url]).await;
    let a = background(&k, "query --max-tokens 100 '[tokens=100] a'").await;
    let b = background(&k, "query --max-tokens 100 '[tokens=100] b'").await;
    one.wait_for("a stream on the first", crate::support::STEP, |f| {
        f.active() == 1
    })
    .await;
    two.wait_for("a stream on the second", crate::support::STEP, |f| {
        f.active() == 1
    })
    .await;
    for pid in [a, b] {
        let out = final_output(&k, pid).await;
        assert_eq!(out, crate::support::fake_llm::answer(100));
    }
}
