//! `llmsh top` on an 80×24 pseudo-terminal: it shows a running process live, `k` asks for a signal
//! and sends it, `q` gives the terminal back (no alternate screen left, the prompt again), and
//! SIGTERM restores the terminal too.

use crate::support::fake_llm::{FakeConfig, FakeLlm};
use crate::support::pty::Terminal;
use crate::support::{TestKernel, job_pid};
use std::time::Duration;

/// A kernel whose one slot generates for a long while, and a home for the shell.
async fn setup() -> (FakeLlm, TestKernel, tempfile::TempDir) {
    let fake = FakeLlm::start(FakeConfig {
        tokens: 100_000,
        delay: Duration::from_millis(20),
        ..Default::default()
    })
    .await;
    let kernel = TestKernel::start(&fake.url, &["--cpus", "1"]).await;
    let home = tempfile::tempdir().expect("home");
    (fake, kernel, home)
}

#[tokio::test]
async fn top_shows_a_running_process_kills_it_on_k_and_q_restores_the_terminal_at_80x24() {
    let (_fake, k, home) = setup().await;
    let pid = job_pid(&k.sh("query watch this one &").await.stdout).to_string();
    let mut t = Terminal::spawn_sized(&k.socket, home.path(), &[], (24, 80));
    t.expect("llmsh$ ").await;
    t.line("top");
    t.expect_row_with(&["PID", "USER", "STAT", "TOKENS", "PROMPT"])
        .await;
    t.expect_row_with(&[&pid, " R ", "watch this"]).await;
    t.expect_row_with(&["Slots: 1/1"]).await;
    assert!(t.alternate_screen(), "top holds the alternate screen");
    t.send("k");
    t.expect_row_with(&["Send signal to", &pid, "[15 TERM]"])
        .await;
    t.send("9\r");
    t.expect_row_with(&[&pid, " Z "]).await;
    t.send("q");
    t.expect_screen("the alternate screen left", |t| !t.alternate_screen())
        .await;
    t.expect_empty_prompt("llmsh$ ").await;
    t.line("ps");
    t.expect_row_with(&[&pid, "Z"]).await;
}

#[tokio::test]
async fn sigterm_while_top_runs_restores_the_terminal_and_ends_the_shell() {
    let (_fake, k, home) = setup().await;
    let mut t = Terminal::spawn_sized(&k.socket, home.path(), &[], (24, 80));
    t.expect("llmsh$ ").await;
    t.line("top");
    t.expect_row_with(&["PID", "PROMPT"]).await;
    assert!(t.alternate_screen());
    t.kill(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(t.exit_status().await, 143);
    // The last bytes it wrote may still be on their way through the pty's reader.
    t.expect_screen("the alternate screen left", |t| !t.alternate_screen())
        .await;
}

#[tokio::test]
async fn s_and_c_stop_and_continue_the_selected_process_and_n_renices_it() {
    let (_fake, k, home) = setup().await;
    let pid = job_pid(&k.sh("query keep going &").await.stdout).to_string();
    let mut t = Terminal::spawn_sized(&k.socket, home.path(), &[], (24, 80));
    t.expect("llmsh$ ").await;
    t.line("top");
    t.expect_row_with(&[&pid, " R ", "keep going"]).await;
    t.send("s");
    t.expect_row_with(&[&pid, " T ", "keep going"]).await;
    t.send("c");
    t.expect_row_with(&[&pid, " R ", "keep going"]).await;
    t.send("n");
    t.expect_row_with(&[&pid, " RN ", "keep going"]).await;
    t.send("q");
    t.expect_screen("the alternate screen left", |t| !t.alternate_screen())
        .await;
}

#[tokio::test]
async fn top_at_80x24_with_three_processes_on_two_slots_is_saved_for_review() {
    let fake = FakeLlm::start(FakeConfig {
        tokens: 100_000,
        delay: Duration::from_millis(20),
        ..Default::default()
    })
    .await;
    let k = TestKernel::start(&fake.url, &["--cpus", "2"]).await;
    let home = tempfile::tempdir().expect("home");
    let mut pids = Vec::new();
    for story in [
        "a story about rivers",
        "a poem about salt",
        "a tale of two slots",
    ] {
        pids.push(job_pid(&k.sh(&format!("query {story} &")).await.stdout).to_string());
    }
    let mut t = Terminal::spawn_sized(&k.socket, home.path(), &[], (24, 80));
    t.expect("llmsh$ ").await;
    t.line("top");
    for pid in &pids {
        t.expect_row_with(&[pid, "a "]).await;
    }
    t.expect_row_with(&["Slots: 2/2"]).await;
    // A sample has come (the rates are measured between two), and a switch has happened.
    t.expect_screen("a context switch and the rates", |t| {
        t.rows().iter().any(|r| {
            r.starts_with("Tokens/s:")
                && !r.starts_with("Tokens/s: 0.0 ")
                && !r.contains("Switches: 0 ")
        })
    })
    .await;
    let capture = t.rows().join("\n");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/top-80x24.txt");
    std::fs::write(&path, format!("{}\n", capture.trim_end())).expect("save the capture");
    t.send("q");
    t.expect_screen("the alternate screen left", |t| !t.alternate_screen())
        .await;
}
