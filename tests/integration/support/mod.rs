//! The test harness: a real `llmkernel` binary on a temporary socket against a [`fake_llm::FakeLlm`],
//! ready when it says READY=1 on a test NOTIFY_SOCKET (no sleeping), stopped when dropped; and `llmsh`
//! run as a binary the way a user runs it.

pub mod fake_llm;
pub mod pty;
pub mod systemd;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

pub const KERNEL: &str = env!("CARGO_BIN_EXE_llmkernel");
pub const SHELL: &str = env!("CARGO_BIN_EXE_llmsh");

/// How long any single step may take before a test fails (generous: CI machines are shared).
pub const STEP: Duration = Duration::from_secs(20);

/// A kernel process under test.
pub struct TestKernel {
    pub child: Child,
    pub socket: PathBuf,
    pub dir: tempfile::TempDir,
}

impl TestKernel {
    /// Starts `llmkernel --socket … --backend URL ARGS…` and waits until it is ready.
    pub async fn start(backend: &str, args: &[&str]) -> TestKernel {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start_in(dir, backend, args).await
    }

    /// As [`TestKernel::start`], in a given directory (to restart on the same state).
    pub async fn start_in(dir: tempfile::TempDir, backend: &str, args: &[&str]) -> TestKernel {
        Self::start_with(dir, backend, args, |_| {}).await
    }

    /// As [`TestKernel::start_in`], with a last word on the command (limits, environment).
    pub async fn start_with(
        dir: tempfile::TempDir,
        backend: &str,
        args: &[&str],
        configure: impl FnOnce(&mut Command),
    ) -> TestKernel {
        let socket = dir.path().join("llmkernel.sock");
        let notify_path = dir.path().join(format!("notify-{}", std::process::id()));
        let _ = std::fs::remove_file(&notify_path);
        let notify = UnixDatagram::bind(&notify_path).expect("bind notify socket");
        notify.set_read_timeout(Some(STEP)).expect("timeout");
        let mut command = Command::new(KERNEL);
        command
            .arg("--socket")
            .arg(&socket)
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .args(args)
            .env("NOTIFY_SOCKET", &notify_path)
            .env("XDG_CONFIG_HOME", dir.path())
            .env("RUST_LOG", "warn")
            .env_remove("LISTEN_FDS")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        if !backend.is_empty() {
            command.arg("--backend").arg(backend); // an empty `backend` leaves it to env and config
        }
        configure(&mut command);
        let child = command.spawn().expect("spawn llmkernel");
        let notify_wait = tokio::task::spawn_blocking(move || {
            let mut buf = [0u8; 512];
            loop {
                let n = notify
                    .recv(&mut buf)
                    .expect("kernel did not report READY=1 in time");
                if String::from_utf8_lossy(&buf[..n])
                    .lines()
                    .any(|l| l == "READY=1")
                {
                    return;
                }
            }
        });
        notify_wait.await.expect("notify wait");
        TestKernel { child, socket, dir }
    }

    /// Runs `llmsh -c COMMANDS` against this kernel.
    pub async fn sh(&self, commands: &str) -> ShellRun {
        run_shell(&self.socket, &["-c", commands], None).await
    }

    /// As [`TestKernel::sh`] on a terminal wide enough that `ps -l` shows whole notes.
    pub async fn sh_wide(&self, commands: &str) -> ShellRun {
        run_shell_env(
            &self.socket,
            &["-c", commands],
            None,
            &[("COLUMNS", "1000")],
        )
        .await
    }

    /// Runs `llmsh` with `stdin` as its input.
    pub async fn sh_stdin(&self, stdin: &str) -> ShellRun {
        run_shell(&self.socket, &[], Some(stdin)).await
    }

    /// Kills the kernel with SIGKILL (a crash) and gives back its directory for a restart.
    pub async fn crash(mut self) -> tempfile::TempDir {
        self.signal(nix::sys::signal::Signal::SIGKILL);
        let _ = tokio::time::timeout(STEP, self.child.wait()).await;
        self.dir
    }

    /// Stops the kernel with SIGTERM (a planned shutdown) and gives back its directory.
    pub async fn stop(mut self) -> tempfile::TempDir {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        assert_eq!(self.exit_code().await, Some(0), "clean shutdown");
        self.dir
    }

    /// Sends a signal to the kernel process.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = self.child.id().expect("kernel pid") as i32;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).expect("signal kernel");
    }

    /// Waits for the kernel to exit; returns its exit code.
    pub async fn exit_code(&mut self) -> Option<i32> {
        tokio::time::timeout(STEP, self.child.wait())
            .await
            .expect("kernel did not exit")
            .ok()?
            .code()
    }

    /// Polls `ps`-like state through the shell until `cond` holds of `llmsh -c commands`'s stdout.
    pub async fn eventually(
        &self,
        commands: &str,
        what: &str,
        cond: impl Fn(&str) -> bool,
    ) -> String {
        self.poll(commands, false, what, cond).await
    }

    /// As [`TestKernel::eventually`], on a wide terminal (see [`TestKernel::sh_wide`]).
    pub async fn eventually_wide(
        &self,
        commands: &str,
        what: &str,
        cond: impl Fn(&str) -> bool,
    ) -> String {
        self.poll(commands, true, what, cond).await
    }

    async fn poll(
        &self,
        commands: &str,
        wide: bool,
        what: &str,
        cond: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            let run = if wide {
                self.sh_wide(commands).await
            } else {
                self.sh(commands).await
            };
            if cond(&run.stdout) {
                return run.stdout;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; last output:\n{}{}",
                    run.stdout, run.stderr
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// `llmkernel` with `args`, not under systemd and with nothing on its standard input: finish it
/// (environment, user) and pass it to [`kernel_refuses`].
pub fn kernel_command(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Command {
    let mut command = Command::new(KERNEL);
    for arg in args {
        command.arg(arg);
    }
    command
        .env_remove("NOTIFY_SOCKET")
        .env_remove("LISTEN_FDS")
        .stdin(Stdio::null());
    command
}

/// Runs a kernel that must refuse to start: it exits with status 1 within a step; returns what it
/// said on stderr.
pub async fn kernel_refuses(mut command: Command) -> String {
    let out = tokio::time::timeout(STEP, command.output())
        .await
        .expect("the kernel gave up in time")
        .expect("run llmkernel");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    stderr
}

/// Writes a kernel config file; pass the path with `--config`, and keep the directory alive while
/// the kernel runs.
pub fn config_file(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("llmkernel.toml");
    std::fs::write(&path, text).expect("write config");
    let path = path.to_string_lossy().into_owned();
    (dir, path)
}

/// What a shell run printed and returned.
#[derive(Debug)]
pub struct ShellRun {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

pub async fn run_shell(socket: &Path, args: &[&str], stdin: Option<&str>) -> ShellRun {
    run_shell_env(socket, args, stdin, &[]).await
}

/// As [`run_shell`], with extra environment variables.
pub async fn run_shell_env(
    socket: &Path,
    args: &[&str],
    stdin: Option<&str>,
    env: &[(&str, &str)],
) -> ShellRun {
    use tokio::io::AsyncWriteExt;
    let mut child = Command::new(SHELL)
        .arg("--socket")
        .arg(socket)
        .args(args)
        .envs(env.iter().copied())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn llmsh");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(input.as_bytes()).await.expect("write stdin");
    }
    let out = tokio::time::timeout(STEP * 2, child.wait_with_output())
        .await
        .expect("llmsh timed out")
        .expect("llmsh");
    ShellRun {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The pid printed by `query ... &` (`[1] 42`).
pub fn job_pid(stdout: &str) -> u64 {
    stdout
        .lines()
        .find_map(|l| {
            l.strip_prefix('[')
                .and_then(|l| l.split_once("] "))
                .and_then(|(_, p)| p.trim().parse().ok())
        })
        .unwrap_or_else(|| panic!("no `[JOB] PID` line in {stdout:?}"))
}

/// The `ps` row of `pid`, split into columns.
pub fn ps_row(ps: &str, pid: u64) -> Option<Vec<String>> {
    ps.lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .find(|cols| cols.first().and_then(|c| c.parse::<u64>().ok()) == Some(pid))
}
