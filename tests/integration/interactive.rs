//! llmsh on a terminal, driven through a pseudo-terminal against a real kernel and the fake LLM:
//! streaming, Ctrl-C, Ctrl-Z and job control, job notices before the prompt and while typing,
//! history across sessions, hints, completion, multi-line input, vi keys, and leaving.

use crate::support::fake_llm::{FakeConfig, FakeLlm};
use crate::support::pty::{Terminal, keys};
use crate::support::{TestKernel, ps_row};
use std::time::Duration;

/// A fake whose answers take a while: 2000 tokens, 10 ms each.
fn slow() -> FakeConfig {
    FakeConfig {
        tokens: 2000,
        delay: Duration::from_millis(10),
        ..Default::default()
    }
}

/// A kernel on the slow fake with two slots, and a home directory for the shell.
async fn setup() -> (FakeLlm, TestKernel, tempfile::TempDir) {
    let fake = FakeLlm::start(slow()).await;
    let kernel = TestKernel::start(&fake.url, &["--cpus", "2"]).await;
    let home = tempfile::tempdir().expect("home");
    (fake, kernel, home)
}

/// The highest `tN` token in `text` (the terminal may have echoed `^Z` right before one).
fn last_token(text: &str) -> Option<usize> {
    text.split('t')
        .skip(1)
        .filter_map(|rest| rest.split(' ').next()?.parse().ok())
        .max()
}

/// The pid in a `[1] 42` line.
fn job_pid_in(text: &str) -> u64 {
    crate::support::job_pid(text)
}

#[tokio::test]
async fn ctrl_z_stops_a_streaming_query_and_bg_fg_ctrl_c_control_it() {
    let (_fake, k, home) = setup().await;
    let mut t = Terminal::spawn(&k.socket, home.path(), &[]);
    t.expect("llmsh$ ").await;
    t.line("query story");
    t.expect("t0 t1 t2 ").await;
    t.send(keys::CTRL_Z);
    t.expect("[1]+  Stopped                 query story").await;
    let streamed = t.text();
    t.expect("llmsh[1]$ ").await;
    t.line("jobs -l");
    let listed = t.expect(" Stopped                 query story").await;
    t.expect("llmsh[1]$ ").await;
    let pid: u64 = listed
        .rsplit_once("[1]+ ")
        .and_then(|(_, p)| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no pid in {listed:?}"));
    k.eventually("ps", "STAT T", |ps| {
        ps_row(ps, pid).is_some_and(|r| r[5] == "T")
    })
    .await;

    t.line("bg %%");
    t.expect("[1]+ query story &").await;
    t.expect("llmsh[1]$ ").await;
    k.eventually("ps", "the job to run again", |ps| {
        ps_row(ps, pid).is_some_and(|r| r[5] == "R")
    })
    .await;
    t.line("fg %1");
    t.expect("query story\n").await;
    // What was shown before Ctrl-Z is not shown again: the stream picks up after it.
    let shown = last_token(&streamed).expect("tokens before the stop");
    let resumed = t.expect(" ").await;
    assert_eq!(resumed.trim(), format!("t{}", shown + 1), "{}", t.text());
    t.expect(&format!("t{} ", shown + 5)).await;
    t.send(keys::CTRL_C);
    t.expect("llmsh$ ").await;
    t.line("exit");
    assert_eq!(t.exit_status().await, 130, "Ctrl-C leaves status 130");
}

#[tokio::test]
async fn a_job_that_ends_during_a_foreground_command_is_reported_before_the_next_prompt() {
    let (_fake, k, home) = setup().await;
    let mut t = Terminal::spawn(&k.socket, home.path(), &[]);
    t.expect("llmsh$ ").await;
    t.line("query \"[tokens=3] quick\" & query long");
    let started = t.expect("t0 t1 ").await;
    let pid = job_pid_in(&started[started.find("[1] ").expect("[1] PID")..]);
    k.eventually("ps", "the quick job to finish", |ps| {
        ps_row(ps, pid).is_some_and(|r| r[5] == "Z")
    })
    .await;
    t.send(keys::CTRL_C);
    let between = t
        .expect("[1]+  Done                    query \"[tokens=3] quick\"")
        .await;
    assert!(
        !between.contains("$ "),
        "no prompt before the notice: {between:?}"
    );
    // What the job said comes with its notice, and then it is reaped.
    assert!(
        between.ends_with("t0 t1 t2 \n"),
        "the answer before the notice: {between:?}"
    );
    k.eventually("ps -a", "the finished job to be reaped", |ps| {
        ps_row(ps, pid).is_none()
    })
    .await;
    t.expect("llmsh$ ").await;
    t.run("jobs").await;
    t.expect("llmsh$ ").await;
    t.run("help jobs").await;
    t.expect("jobs: jobs [-l]").await;
    t.expect("llmsh$ ").await;
    assert_eq!(t.text().matches("Done").count(), 1, "{}", t.text());
}

#[tokio::test]
async fn a_job_that_ends_while_the_user_types_is_reported_above_the_line_without_garbling_it() {
    let (_fake, k, home) = setup().await;
    let mut t = Terminal::spawn(&k.socket, home.path(), &[]);
    t.expect("llmsh$ ").await;
    t.line("query long &");
    let pid = job_pid_in(&t.expect("llmsh[1]$ ").await);
    t.send("help jo");
    t.expect_cursor_row("llmsh[1]$ help jo").await;
    let killed = k.sh(&format!("kill -KILL {pid}")).await;
    assert_eq!(killed.status, 0, "{killed:?}");
    t.expect("[1]+  Killed                  query long").await;
    // The line comes back below the notice as it was, and the prompt no longer counts the job.
    t.expect_cursor_row("llmsh$ help jo").await;
    t.send("bs\r");
    t.expect("jobs: jobs [-l]").await;
    t.expect("llmsh$ ").await;
    assert_eq!(t.text().matches("Killed").count(), 1, "{}", t.text());
}

#[tokio::test]
async fn history_is_saved_to_the_state_directory_and_recalled_in_the_next_session() {
    let home = tempfile::tempdir().expect("home");
    let socket = home.path().join("no-kernel.sock");
    let mut first = Terminal::spawn(&socket, home.path(), &[]);
    first.expect("llmsh$ ").await;
    first.line("help kill");
    first.expect("kill: kill [-s").await;
    first.expect("llmsh$ ").await;
    first.line("exit");
    assert_eq!(first.exit_status().await, 0);
    let file = home.path().join("state/llmsh/history");
    let saved = std::fs::read_to_string(&file).expect("history");
    assert!(saved.lines().any(|l| l == "help kill"), "{saved:?}");
    let mode = std::os::unix::fs::PermissionsExt::mode(&file.metadata().unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "history is private");

    let mut second = Terminal::spawn(&socket, home.path(), &[]);
    second.expect("llmsh$ ").await;
    second.send(keys::UP);
    second.expect_cursor_row("llmsh$ exit").await;
    second.send(keys::UP);
    second.expect_cursor_row("llmsh$ help kill").await;
    second.send("\r");
    second.expect("kill: kill [-s").await;
    second.expect("llmsh$ ").await;
    // A fish-style hint from history: Right accepts it.
    second.send("help k");
    second.expect_cursor_row("llmsh$ help kill").await;
    second.send(keys::RIGHT);
    second.send("\r");
    second.expect("kill: kill [-s").await;
}

#[tokio::test]
async fn tab_completes_builtins_flags_job_specs_and_pids() {
    let (_fake, k, home) = setup().await;
    let mut t = Terminal::spawn(&k.socket, home.path(), &[]);
    t.expect("llmsh$ ").await;
    t.line("query long &");
    let pid = job_pid_in(&t.expect("llmsh[1]$ ").await);
    t.send(&format!("hel{}", keys::TAB));
    t.expect_cursor_row("llmsh[1]$ help ").await;
    t.send("\x15"); // Ctrl-U: clear the line
    t.send(&format!("jobs -{}", keys::TAB));
    t.expect_cursor_row("llmsh[1]$ jobs -l").await;
    t.send("\r");
    t.expect(&format!("[1]+ {pid} Running")).await;
    t.expect("llmsh[1]$ ").await;
    // Both the job and its pid are offered, the pid with its state and prompt.
    t.send(&format!("cat {}", keys::TAB));
    t.expect_cursor_row("llmsh[1]$ cat ").await;
    t.expect_row_with(&["%1", "query long"]).await;
    t.expect_row_with(&[&format!("{pid} "), " long"]).await;
    t.send(keys::CTRL_C);
    t.expect_empty_prompt("llmsh[1]$ ").await;
    t.send(&format!("kill %{}", keys::TAB));
    t.expect_cursor_row("llmsh[1]$ kill %1 ").await;
    t.send("\r");
    t.expect("[1]+  Terminated              query long").await;
}

#[tokio::test]
async fn an_open_quote_continues_the_line_and_the_prompt_says_so() {
    let (fake, k, home) = setup().await;
    let mut t = Terminal::spawn(&k.socket, home.path(), &[]);
    t.expect("llmsh$ ").await;
    t.line("query --max-tokens 3 \"first");
    t.expect("> ").await;
    t.line("second\"");
    t.expect("t0 t1 t2").await;
    t.expect("llmsh$ ").await;
    let prompts: Vec<String> = fake.requests().iter().map(|r| r.user_prompt()).collect();
    assert_eq!(prompts, ["first\nsecond"]);
}

#[tokio::test]
async fn vi_mode_edits_with_vi_keys() {
    let home = tempfile::tempdir().expect("home");
    let mut t = Terminal::spawn(&home.path().join("none.sock"), home.path(), &["--vi"]);
    t.expect("llmsh$ ").await;
    // Typo, then in normal mode: back to the start, one right, replace with `e`.
    t.send("hxlp jobs");
    t.expect_cursor_row("hxlp jobs").await;
    t.send(&format!("{}0lre", keys::ESC));
    t.expect_cursor_row("llmsh$ help jobs").await;
    t.send("\r");
    t.expect("jobs: jobs [-l]").await;
}

#[tokio::test]
async fn ctrl_c_on_an_empty_line_gives_a_new_prompt_and_ctrl_d_or_exit_warn_once_about_stopped_jobs()
 {
    let (_fake, k, home) = setup().await;
    let mut t = Terminal::spawn(&k.socket, home.path(), &[]);
    t.expect("llmsh$ ").await;
    t.send(keys::CTRL_C);
    // As bash: a fresh prompt on the next line, and no lecture.
    t.expect("llmsh$ ").await;
    t.expect_empty_prompt("llmsh$ ").await;
    t.send("help jo");
    t.expect_cursor_row("llmsh$ help jo").await;
    t.send(keys::CTRL_C);
    t.expect("llmsh$ ").await;
    t.expect_empty_prompt("llmsh$ ").await;
    let rows: Vec<String> = t.rows().iter().map(|r| r.trim_end().to_string()).collect();
    assert_eq!(
        rows[..3],
        ["llmsh$", "llmsh$ help jo", "llmsh$"],
        "{}",
        t.text()
    );
    assert!(!t.text().contains("Ctrl-D"), "{}", t.text());
    t.line("query long");
    t.expect("t0 ").await;
    t.send(keys::CTRL_Z);
    t.expect("llmsh[1]$ ").await;
    t.send(keys::CTRL_D);
    t.expect("There are stopped jobs.").await;
    t.expect("llmsh[1]$ ").await;
    // A command in between re-arms the warning, as in bash.
    t.line("help exit");
    t.expect("exit: exit [N]").await;
    t.expect("llmsh[1]$ ").await;
    t.line("exit");
    t.expect("There are stopped jobs.").await;
    t.expect("llmsh[1]$ ").await;
    t.send(keys::CTRL_D);
    t.expect("exit").await;
    assert_eq!(t.exit_status().await, 1, "the status of the refused exit");
}

#[tokio::test]
async fn ctrl_c_interrupts_wait_and_returns_to_the_prompt() {
    let (_fake, k, home) = setup().await;
    let mut t = Terminal::spawn(&k.socket, home.path(), &[]);
    t.expect("llmsh$ ").await;
    t.line("query long &");
    t.expect("llmsh[1]$ ").await;
    t.line("wait %1");
    t.expect_command_running().await;
    t.send(keys::CTRL_C);
    t.expect("llmsh[1]$ ").await;
    t.line("exit");
    assert_eq!(t.exit_status().await, 130);
}

#[tokio::test]
async fn a_background_job_stopped_and_continued_by_kill_is_reported_like_bash() {
    let (_fake, k, home) = setup().await;
    let mut t = Terminal::spawn(&k.socket, home.path(), &[]);
    t.expect("llmsh$ ").await;
    t.line("query one &");
    t.expect("llmsh[1]$ ").await;
    t.line("query two &");
    t.expect("llmsh[2]$ ").await;
    t.run("kill -STOP %-").await;
    let before_prompt = t.expect("llmsh[2]$ ").await;
    assert!(
        before_prompt.contains("[1]-  Stopped                 query one"),
        "{before_prompt:?}"
    );
    t.run("kill -CONT %1").await;
    t.expect("llmsh[2]$ ").await;
    t.run("jobs").await;
    t.expect("[1]-  Running                 query one &").await;
    t.expect("[2]+  Running                 query two &").await;
    t.expect("llmsh[2]$ ").await;
    assert_eq!(t.text().matches("Stopped").count(), 1, "{}", t.text());
}

/// A fake whose tokens come slowly enough that a key press is seen long before the next one.
fn slower() -> FakeConfig {
    FakeConfig {
        tokens: 2000,
        delay: Duration::from_millis(50),
        ..Default::default()
    }
}

#[tokio::test]
async fn ctrl_z_and_ctrl_c_echo_on_their_own_line_with_no_token_after_them() {
    let fake = FakeLlm::start(slower()).await;
    let k = TestKernel::start(&fake.url, &["--cpus", "2"]).await;
    let home = tempfile::tempdir().expect("home");
    let mut t = Terminal::spawn(&k.socket, home.path(), &[]);
    t.expect("llmsh$ ").await;
    t.line("query story");
    t.expect("t0 t1 ").await;
    t.send(keys::CTRL_Z);
    let before = t
        .expect("[1]+  Stopped                 query story\n")
        .await;
    assert!(before.ends_with("^Z\n"), "^Z then a new line: {before:?}");
    let shown = last_token(&t.text()).expect("tokens before the stop");
    t.expect("llmsh[1]$ ").await;
    t.run("fg").await;
    t.expect("query story\n").await;
    // fg picks up right after the last token shown: nothing was printed after the ^Z.
    let resumed = t.expect(" ").await;
    assert_eq!(resumed.trim(), format!("t{}", shown + 1), "{}", t.text());
    t.expect(&format!("t{} ", shown + 2)).await;
    t.send(keys::CTRL_C);
    let before = t.expect("llmsh$ ").await;
    assert!(before.ends_with("^C\n"), "^C then a new line: {before:?}");
}

#[tokio::test]
async fn clear_clears_the_screen_and_the_scrollback_like_clear_1() {
    let home = tempfile::tempdir().expect("home");
    let mut t = Terminal::spawn(&home.path().join("none.sock"), home.path(), &[]);
    t.expect("llmsh$ ").await;
    t.run("clear").await;
    t.expect("llmsh$ ").await;
    let raw = String::from_utf8_lossy(&t.raw()).into_owned();
    assert!(raw.contains("\x1b[H\x1b[2J\x1b[3J"), "{raw:?}");
}

#[tokio::test]
async fn a_background_answer_that_ends_while_the_user_types_is_printed_above_the_line_and_reaped() {
    let (_fake, k, home) = setup().await;
    let mut t = Terminal::spawn(&k.socket, home.path(), &[]);
    t.expect("llmsh$ ").await;
    t.line("query \"[tokens=3] quick\" &");
    let pid = job_pid_in(&t.expect("llmsh[1]$ ").await);
    t.send("help jo");
    let above = t
        .expect("[1]+  Done                    query \"[tokens=3] quick\"")
        .await;
    assert!(above.contains("t0 t1 t2 \n"), "{above:?}");
    t.expect_cursor_row("llmsh$ help jo").await;
    k.eventually("ps -a", "the finished job to be reaped", |ps| {
        ps_row(ps, pid).is_none()
    })
    .await;
    t.send("bs\r");
    t.expect("jobs: jobs [-l]").await;
    assert_eq!(t.text().matches("t0 t1 t2").count(), 1, "{}", t.text());
}
