//! Model output and backend error text on a terminal: escape sequences and control characters
//! are shown as visible text (`^[`, `^G`, `<U+009B>`), never interpreted, when a query streams,
//! in `cat`, and in error messages; written byte for byte when stdout is a pipe.

use crate::support::fake_llm::{ESCAPES, FakeConfig, FakeLlm, Fault};
use crate::support::pty::Terminal;
use crate::support::{TestKernel, job_pid, ps_row};

/// [`ESCAPES`] as llmsh shows it on a terminal.
const VISIBLE: &str = "^[[2J^[]52;c;eA==^G<U+009B>31m";

#[tokio::test]
async fn escapes_in_streamed_and_cat_output_are_shown_not_interpreted_on_a_terminal() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let k = TestKernel::start(&fake.url, &[]).await;
    let home = tempfile::tempdir().expect("home");
    let mut t = Terminal::spawn(&k.socket, home.path(), &[]);
    t.expect("llmsh$ ").await;
    t.run("query \"[escapes=1] [tokens=2] hi\"").await;
    // The terminal's text with escapes removed: an escape that reached the terminal would be gone.
    t.expect(&format!("{VISIBLE}t0 {VISIBLE}t1 \n")).await;
    t.expect("llmsh$ ").await;
    // The screen was not cleared: the command line is still on it.
    t.expect_row_with(&["llmsh$ query", "[escapes=1]"]).await;

    t.run("query \"[escapes=1] [tokens=1] again\" &").await;
    t.expect("[1] ").await;
    // The job's answer comes with its `Done` notice, shown as safely as a foreground answer.
    t.expect(&format!("{VISIBLE}t0 ")).await;
    t.expect("Done").await;
    t.run("").await;
    t.expect("$ ").await;
    t.expect_row_with(&["llmsh$ query", "[escapes=1]"]).await;
}

#[tokio::test]
async fn output_to_a_pipe_is_written_byte_for_byte() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let k = TestKernel::start(&fake.url, &[]).await;
    let run = k.sh("query \"[escapes=1] [tokens=2] hi\"").await;
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(run.stdout, format!("{ESCAPES}t0 {ESCAPES}t1 \n"));

    let pid = job_pid(
        &k.sh("query \"[escapes=1] [tokens=1] again\" &")
            .await
            .stdout,
    );
    k.eventually("ps", "the job to finish", |ps| {
        ps_row(ps, pid).is_some_and(|r| r[5] == "Z")
    })
    .await;
    let run = k.sh(&format!("cat {pid}")).await;
    assert_eq!(run.stdout, format!("{ESCAPES}t0 \n"), "{run:?}");
}

#[tokio::test]
async fn a_backend_error_text_with_escapes_is_shown_visibly_in_query_and_wait() {
    let fake = FakeLlm::start(FakeConfig {
        fault: Some(Fault::Status(400)),
        ..Default::default()
    })
    .await;
    let k = TestKernel::start(&fake.url, &[]).await;
    let foreground = k.sh("query \"[escapes=1] hi\"").await;
    let waited = k.sh("query \"[escapes=1] hi\" &\nwait %1").await;
    assert!(waited.stderr.contains("llmsh: wait: "), "{waited:?}");
    for run in [foreground, waited] {
        assert_eq!(run.status, 1, "{run:?}");
        let shown = format!("injected failure {VISIBLE}");
        assert!(run.stderr.contains(&shown), "{run:?}");
        assert!(!run.stderr.contains(['\x1b', '\x07', '\u{9b}']), "{run:?}");
    }
}
