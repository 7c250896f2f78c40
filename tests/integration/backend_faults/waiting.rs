//! The foreground query says why it waits: behind a dead backend, `llmsh` shows `waiting: backend …
//! refused the connection; retrying …` on stderr, and once the backend is back the answer streams;
//! on a terminal the line is rewritten in place and gone when tokens flow; a query waiting in a long
//! queue shows its place.

use super::start;
use crate::support::fake_llm::{FakeConfig, FakeLlm, answer};
use crate::support::pty::Terminal;
use crate::support::{SHELL, STEP, run_shell};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test]
async fn a_query_behind_a_dead_backend_says_why_then_answers_when_it_comes_back() {
    let mut fake = FakeLlm::start(FakeConfig::default()).await;
    let url = fake.url.clone();
    fake.stop().await;
    let (k, _cfg) = start(&url, "", &[]).await;
    let mut shell = tokio::process::Command::new(SHELL)
        .arg("--socket")
        .arg(&k.socket)
        .args(["-c", "query hello"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn llmsh");
    let mut stderr = BufReader::new(shell.stderr.take().expect("stderr")).lines();
    let want = format!("waiting: backend {url} refused the connection; retrying");
    let first = tokio::time::timeout(STEP, async {
        loop {
            match stderr.next_line().await {
                Ok(Some(line)) if line.starts_with(&want) => return line,
                Ok(Some(_)) => continue,
                other => panic!("stderr ended without a waiting line: {other:?}"),
            }
        }
    })
    .await
    .expect("a waiting line on stderr");
    assert!(
        first.ends_with(')') && first.contains("(attempt "),
        "{first}"
    );
    fake.restart().await;
    let rest = tokio::spawn(async move {
        let mut lines = Vec::new();
        while let Ok(Some(line)) = stderr.next_line().await {
            lines.push(line);
        }
        lines
    });
    let out = tokio::time::timeout(STEP, shell.wait_with_output())
        .await
        .expect("the answer once the backend is back")
        .expect("llmsh");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}\n", answer(10))
    );
    let rest = rest.await.expect("stderr");
    assert!(
        rest.iter().all(|l| l.starts_with("waiting: ")),
        "nothing else on stderr: {rest:?}"
    );
    let mut all = vec![first];
    all.extend(rest);
    let mut unique = all.clone();
    unique.dedup();
    assert_eq!(unique, all, "each line printed once");
}

#[tokio::test]
async fn a_query_in_a_long_queue_shows_its_place() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let (k, _cfg) = start(&fake.url, "", &["--quantum", "1000"]).await;
    // One slot, taken for some seconds by a long answer (no preemption before it ends), followed
    // by a shell of its own.
    let socket = k.socket.clone();
    let long = tokio::spawn(async move {
        run_shell(
            &socket,
            &["-c", "query '[tokens=100] [delay=30] long'"],
            None,
        )
        .await
    });
    fake.wait_for("the long answer to start", STEP, |f| f.active() == 1)
        .await;
    let run = k.sh("query short").await;
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(run.stdout, format!("{}\n", answer(10)));
    assert!(
        run.stderr
            .lines()
            .any(|l| l == "waiting: queued at position 1"),
        "{run:?}"
    );
    assert_eq!(long.await.expect("long").status, 0);
}

#[tokio::test]
async fn on_a_terminal_the_waiting_line_is_rewritten_in_place_and_gone_when_tokens_flow() {
    let mut fake = FakeLlm::start(FakeConfig::default()).await;
    let url = fake.url.clone();
    fake.stop().await;
    let (k, _cfg) = start(&url, "", &[]).await;
    let home = tempfile::tempdir().expect("home");
    let mut t = Terminal::spawn(&k.socket, home.path(), &[]);
    t.expect("llmsh$ ").await;
    t.run("query hello").await;
    t.expect("waiting: backend ").await;
    // A later note replaces the line instead of adding one.
    t.expect("waiting: backend ").await;
    let rows = t.rows();
    let shown = rows.iter().filter(|r| r.contains("waiting: ")).count();
    assert_eq!(shown, 1, "one status line:\n{}", rows.join("\n"));
    fake.restart().await;
    t.expect(&answer(10)).await;
    t.expect("llmsh$ ").await;
    let rows = t.rows();
    assert!(
        rows.iter().all(|r| !r.contains("waiting: ")),
        "the status line is gone:\n{}",
        rows.join("\n")
    );
    assert!(
        rows.iter().any(|r| r.trim_end() == answer(10).trim_end()),
        "the answer stands on its own row:\n{}",
        rows.join("\n")
    );
}
