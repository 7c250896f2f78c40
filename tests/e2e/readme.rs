//! The README's opening session, run as a new user runs it: `scripts/quickstart` (the real
//! SmolLM2-135M-Instruct under its managed llama-server, with the quickstart's own slots) fed the
//! commands of the README's first `session` block. The small model answers the questions, the
//! background story is still there to `ps` and `kill -STOP`, and the USER question preempts a story
//! for real (a row of `ps -l` shows `CSW` 1 or more).

use crate::support::{KERNEL, ROOT, STEP, setup};
use std::path::Path;
use std::process::Stdio;
use tokio::io::AsyncWriteExt;

/// The commands after the `llmsh$ ` prompts of the README's first session block.
fn readme_session() -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).expect("README.md");
    let (_, block) = readme
        .split_once("<!-- readme-test: session -->")
        .expect("a session block");
    block
        .lines()
        .skip(2) // the marker's line end and the fence
        .take_while(|l| !l.starts_with("```"))
        .filter_map(|l| l.strip_prefix("llmsh")?.split_once("$ ").map(|(_, c)| c))
        .map(str::to_string)
        .collect()
}

/// The largest `CSW` of the `ps -l` tables in `out`.
fn most_switches(out: &str) -> Option<u32> {
    let mut column = None;
    let mut most = None;
    for line in out.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if let Some(i) = fields.iter().position(|f| *f == "CSW") {
            column = Some(i);
            continue;
        }
        let numeric_pid = fields.first().is_some_and(|f| f.parse::<u32>().is_ok());
        if let (Some(i), true) = (column, numeric_pid)
            && let Some(csw) = fields.get(i).and_then(|f| f.parse::<u32>().ok())
        {
            most = most.max(Some(csw));
        }
    }
    most
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_session_runs_on_the_quickstart_model_as_shown() {
    let Some(_llama) = setup().await else { return };
    let commands = readme_session();
    assert!(commands.len() >= 6, "{commands:?}");
    let run = tempfile::tempdir().expect("run dir");
    let bin_dir = Path::new(KERNEL).parent().expect("binary dir");
    let mut quickstart = tokio::process::Command::new(Path::new(ROOT).join("scripts/quickstart"))
        .env("LLMKERNEL_BIN_DIR", bin_dir)
        .env("LLMKERNEL_QUICKSTART_DIR", run.path())
        .env_remove("NOTIFY_SOCKET")
        .env_remove("LISTEN_FDS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("scripts/quickstart");
    let mut stdin = quickstart.stdin.take().expect("stdin");
    stdin
        .write_all(format!("{}\n", commands.join("\n")).as_bytes())
        .await
        .expect("write the session");
    drop(stdin);
    let out = tokio::time::timeout(STEP * 3, quickstart.wait_with_output())
        .await
        .expect("the session ended in time")
        .expect("quickstart output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("Paris"), "the model answers:\n{stdout}");
    assert!(stdout.contains("Rome"), "the model answers:\n{stdout}");
    assert!(
        stdout.contains("Stopped") && stdout.contains("lighthouse"),
        "the story was still running to stop:\n{stdout}\n{stderr}"
    );
    let switches = most_switches(&stdout);
    assert!(
        switches.is_some_and(|n| n >= 1),
        "a story was preempted for the USER question (CSW {switches:?}):\n{stdout}"
    );
}

#[test]
fn switches_are_read_from_the_csw_column() {
    let out = "   PID USER TYPE URG NI STAT TOKENS PTOK TIME CSW SLOT\n     2 a H 20 0 R 1/5 4 0:01 1 0\n     3 a H 20 0 R 1/5 4 0:01 0 1\nThe end.\n";
    assert_eq!(most_switches(out), Some(1));
    assert_eq!(most_switches("no table"), None);
}
