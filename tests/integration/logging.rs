//! Where the kernel's log goes: `--daemon` keeps it (`--log-file`, else `llmkernel.log` in the state
//! directory), a log that is not a terminal has no colour codes, and the start-up line names the
//! socket, the backend, the model and the slots.

use crate::support::fake_llm::{FakeConfig, FakeLlm};
use crate::support::{KERNEL, STEP, TestKernel};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// Starts `llmkernel --daemon` with `extra` arguments, stderr to a pipe (as from a script); returns
/// the daemon's pid once the parent says it serves.
async fn start_daemon(dir: &Path, backend: &str, extra: &[&str]) -> i32 {
    let pidfile = dir.join("k.pid");
    let out = tokio::process::Command::new(KERNEL)
        .arg("--daemon")
        .arg("--pidfile")
        .arg(&pidfile)
        .arg("--socket")
        .arg(dir.join("k.sock"))
        .arg("--backend")
        .arg(backend)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args(extra)
        .env("XDG_CONFIG_HOME", dir)
        .env("XDG_RUNTIME_DIR", dir)
        .env("RUST_LOG", "info")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("LISTEN_FDS")
        .env_remove("JOURNAL_STREAM")
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run llmkernel --daemon");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    std::fs::read_to_string(&pidfile)
        .expect("pidfile")
        .trim()
        .parse()
        .expect("pid")
}

/// Stops the daemon with SIGTERM and waits until it is gone (its log is then complete).
async fn stop_daemon(pid: i32) {
    let pid = nix::unistd::Pid::from_raw(pid);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let deadline = tokio::time::Instant::now() + STEP;
    while nix::sys::signal::kill(pid, None).is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "daemon did not exit"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn assert_plain_start_up_line(log: &str, socket: &Path, backend: &str) {
    assert!(!log.contains('\x1b'), "colour codes in a log file: {log:?}");
    let line = log
        .lines()
        .find(|l| l.contains("serving on"))
        .unwrap_or_else(|| panic!("no start-up line in {log:?}"));
    let expected = format!(
        "serving on {}: backend {backend}, model tiny, 2 slots",
        socket.display()
    );
    assert!(line.contains(&expected), "{line:?} lacks {expected:?}");
}

#[tokio::test]
async fn a_daemon_writes_its_log_to_the_log_file_without_colours() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("logs").join("kernel.log");
    let log_arg = log.to_str().unwrap();
    let extra = ["--log-file", log_arg, "--model", "tiny", "--cpus", "2"];
    let pid = start_daemon(dir.path(), &fake.url, &extra).await;
    stop_daemon(pid).await;
    let text = std::fs::read_to_string(&log).expect("log file");
    assert_plain_start_up_line(&text, &dir.path().join("k.sock"), &fake.url);
    assert!(text.contains("shutting down"), "{text}");
}

#[tokio::test]
async fn a_daemon_given_no_log_file_keeps_its_log_in_the_state_directory() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let extra = ["--model", "tiny", "--cpus", "2"];
    let pid = start_daemon(dir.path(), &fake.url, &extra).await;
    stop_daemon(pid).await;
    let text = std::fs::read_to_string(dir.path().join("state/llmkernel.log")).expect("log");
    assert_plain_start_up_line(&text, &dir.path().join("k.sock"), &fake.url);
}

#[tokio::test]
async fn a_log_file_that_cannot_be_written_stops_the_start_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file"), "").unwrap();
    let out = tokio::process::Command::new(KERNEL)
        .arg("--socket")
        .arg(dir.path().join("k.sock"))
        .arg("--log-file")
        .arg(dir.path().join("file/kernel.log"))
        .env("XDG_CONFIG_HOME", dir.path())
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot open the log file") && stderr.contains("file/kernel.log"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_kernel_logging_to_a_pipe_writes_no_colour_codes() {
    let fake = FakeLlm::start(FakeConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let args = ["--model", "tiny", "--cpus", "2"];
    let mut k = TestKernel::start_with(dir, &fake.url, &args, |cmd| {
        cmd.env("RUST_LOG", "info")
            .env_remove("JOURNAL_STREAM")
            .stderr(Stdio::piped());
    })
    .await;
    let mut stderr = k.child.stderr.take().expect("stderr piped");
    let socket = k.socket.clone();
    k.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(k.exit_code().await, Some(0));
    let mut text = String::new();
    stderr.read_to_string(&mut text).await.unwrap();
    assert_plain_start_up_line(&text, &socket, &fake.url);
}
