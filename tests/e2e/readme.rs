//! The README's opening session, run as a new user runs it: `scripts/quickstart` (the real
//! SmolLM2-135M-Instruct under its managed llama-server, with the quickstart's own slots) fed the
//! commands of the README's first `session` block. The small model answers the questions, the
//! background stories are still there to `ps` and `kill -STOP` (no `kill` fails), and the USER
//! question waits behind no story (it finds the kept slot free, or preempts a story for real). A
//! script's llmsh, like bash's, prints no job notices, so the transcript's `Stopped` line is not
//! compared.

use crate::support::{KERNEL, ROOT, STEP, setup};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// What the session printed.
struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Reads `pipe` to its end in the background into the returned buffer.
fn collect(mut pipe: impl AsyncRead + Unpin + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let sink = buf.clone();
    tokio::spawn(async move {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    buf
}

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
    // Read as it comes, so that a session that does not end shows how far it got.
    let stdout = collect(quickstart.stdout.take().expect("stdout"));
    let stderr = collect(quickstart.stderr.take().expect("stderr"));
    let status = tokio::time::timeout(STEP * 2, quickstart.wait()).await;
    let text =
        |buf: &Arc<Mutex<Vec<u8>>>| String::from_utf8_lossy(&buf.lock().unwrap()).into_owned();
    let Ok(status) = status else {
        panic!(
            "the session did not end in time:\n{}\n{}",
            text(&stdout),
            text(&stderr)
        );
    };
    let status = status.expect("quickstart status");
    // The pipes close with the session; give the readers a moment to drain them.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let out = Out {
        code: status.code(),
        stdout: text(&stdout),
        stderr: text(&stderr),
    };
    let (stdout, stderr) = (&out.stdout, &out.stderr);
    assert_eq!(out.code, Some(0), "{stdout}\n{stderr}");
    // The model samples (llama-server's default temperature): its wording varies from run to run,
    // so each question is checked for an answer, not for its words.
    let first = stdout.split("\n[1] ").next().unwrap_or("").trim();
    assert!(!first.is_empty(), "the model answers:\n{stdout}");
    // The second answer comes between the last `[4] PID` and the `ps -l` header.
    let second = stdout
        .split_once("[4] ")
        .and_then(|(_, rest)| rest.split_once('\n'))
        .and_then(|(_, rest)| rest.split_once("   PID "))
        .map(|(answer, _)| answer.trim().to_string());
    assert!(
        second.is_some_and(|a| !a.is_empty()),
        "the model answers the second question:\n{stdout}"
    );
    assert!(
        stdout.contains("Write a long story about a lighthouse"),
        "the story was still there for ps:\n{stdout}\n{stderr}"
    );
    // llmsh names a failed kill on stderr (`kill: %1: no such job`): every job was still there.
    assert!(!stderr.contains("kill:"), "{stdout}\n{stderr}");
    // The question did not wait behind the stories: the four stories ran on the slots background
    // work may use and the question found the kept one free, or a slot was kept from a story (it
    // waits, `Q`), or a story was switched out for it (`CSW 1`).
    let switches = most_switches(stdout);
    let stories = |stat: &str| {
        stdout
            .lines()
            .filter(|l| l.contains("HOUSEKEEPING") && l.split_whitespace().nth(5) == Some(stat))
            .count()
    };
    let spare = stories("R") >= 4;
    let kept = stories("Q") >= 1;
    assert!(
        spare || kept || switches.is_some_and(|n| n >= 1),
        "the USER question found a slot free or kept, or a story switched out (CSW {switches:?}):\n{stdout}"
    );
}

/// A number the quickstart script sets (`NAME=4096`).
fn quickstart_setting(script: &str, name: &str) -> u32 {
    script
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}="))?.trim().parse().ok())
        .unwrap_or_else(|| panic!("scripts/quickstart sets {name}"))
}

/// The quickstart gives each slot a context that holds a USER query's whole default allowance and
/// the README's questions, so none of them is cut at a full context (a slot held 2,048 tokens).
#[test]
fn the_quickstart_gives_each_slot_a_context_that_answers_the_readme_whole() {
    let script = std::fs::read_to_string(Path::new(ROOT).join("scripts/quickstart"))
        .expect("scripts/quickstart");
    let slots = quickstart_setting(&script, "SLOTS");
    let per_slot = quickstart_setting(&script, "SLOT_CONTEXT");
    assert!(
        script.contains(r#""-np", "$SLOTS", "-c", "$((SLOTS * SLOT_CONTEXT))""#),
        "llama-server divides -c among its -np slots"
    );
    // Room for a question: its words, the chat template's tokens, a system prompt.
    const QUESTION_TOKENS: u32 = 96;
    let allowance = llmkernel::proto::ProcessType::User.default_allowance_tokens();
    assert!(
        per_slot >= allowance + QUESTION_TOKENS,
        "{per_slot} tokens a slot"
    );
    let longest_question = readme_session()
        .iter()
        .filter(|c| !c.contains('&'))
        .map(|c| c.len() as u32)
        .max()
        .unwrap_or(0);
    assert!(longest_question < QUESTION_TOKENS, "{longest_question}");
    // Four stories of the session run at once on the slots background work may use: the kernel
    // adds the kept slot on top (see the managed backend's reserve).
    assert!(slots >= 4, "{slots} slots");
}

#[test]
fn switches_are_read_from_the_csw_column() {
    let out = "   PID USER TYPE URG NI STAT TOKENS PTOK TIME CSW SLOT\n     2 a H 20 0 R 1/5 4 0:01 1 0\n     3 a H 20 0 R 1/5 4 0:01 0 1\nThe end.\n";
    assert_eq!(most_switches(out), Some(1));
    assert_eq!(most_switches("no table"), None);
}
