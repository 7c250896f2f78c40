//! One run of the managed server's command: a child process in its own process group (so a Ctrl-C
//! on the kernel's terminal reaches the kernel, which then stops the server in order), told to die
//! with the kernel, its output logged and its last lines kept for error messages. It does not
//! inherit what systemd said to the kernel ([`SERVICE_MANAGER_VARS`]).

use std::collections::VecDeque;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

/// What systemd tells the kernel alone: the server must not take the kernel's socket
/// (`LISTEN_*`), speak for it (`NOTIFY_SOCKET`: a READY=1 from the server would be taken as the
/// kernel's), or be watched in its place (`WATCHDOG_*`).
pub(super) const SERVICE_MANAGER_VARS: [&str; 6] = [
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
];

/// Lines of the server's output kept for error messages.
const TAIL_LINES: usize = 12;
/// How long an exited server's remaining output may take to be read. Output already in the pipes
/// is read at once (the pipes close with the server); only a server that left a process holding
/// them makes this wait whole, so it can be generous enough for a loaded machine.
const OUTPUT_DRAIN: Duration = Duration::from_secs(2);
/// Longest output line kept (llama-server prints whole prompts at some log levels).
const TAIL_LINE_CHARS: usize = 300;

/// The last lines the server printed (stdout and stderr interleaved as they came).
#[derive(Clone, Default)]
pub(super) struct OutputTail(Arc<Mutex<VecDeque<String>>>);

impl OutputTail {
    fn push(&self, line: String) {
        let mut lines = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if lines.len() == TAIL_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    /// `"; its last output:\n  …"`, or nothing when it printed nothing.
    pub(super) fn describe(&self) -> String {
        let lines = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if lines.is_empty() {
            return String::new();
        }
        let body: Vec<String> = lines.iter().map(|l| format!("  {l}")).collect();
        format!("; its last output:\n{}", body.join("\n"))
    }
}

/// A running server process.
pub(super) struct ServerProcess {
    child: Child,
    pub(super) pid: u32,
    pub(super) tail: OutputTail,
    /// The tasks reading its stdout and stderr; they end when it closes them.
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl ServerProcess {
    /// Starts `command` (program and arguments).
    pub(super) fn spawn(command: &[String]) -> std::io::Result<ServerProcess> {
        let (program, args) = command
            .split_first()
            .ok_or_else(|| std::io::Error::other("empty command"))?;
        let mut cmd = Command::new(program);
        for var in SERVICE_MANAGER_VARS {
            cmd.env_remove(var);
        }
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            // Should the kernel itself die without stopping it, the server follows (below), and a
            // dropped handle (a runtime torn down in a hurry) kills it.
            .kill_on_drop(true);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)
                    .map_err(std::io::Error::from)
            });
        }
        let mut child = cmd.spawn()?;
        let pid = child.id().unwrap_or(0);
        let tail = OutputTail::default();
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(tokio::spawn(log_lines(out, pid, tail.clone())));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(tokio::spawn(log_lines(err, pid, tail.clone())));
        }
        tracing::info!(pid, program = %program, "started the backend server");
        Ok(ServerProcess {
            child,
            pid,
            tail,
            readers,
        })
    }

    /// Waits for the server to exit, and for its last output to be read (briefly: a process it
    /// left behind may hold the pipes open).
    pub(super) async fn exited(&mut self) -> ExitStatus {
        let status = match self.child.wait().await {
            Ok(status) => status,
            // Waiting on our own child cannot really fail; treat it as gone.
            Err(_) => ExitStatus::from_raw(0),
        };
        let readers = futures::future::join_all(self.readers.drain(..));
        let _ = tokio::time::timeout(OUTPUT_DRAIN, readers).await;
        status
    }

    /// Stops the server: SIGTERM to its process group, SIGKILL after `grace`.
    pub(super) async fn stop(mut self, grace: Duration) {
        let group = nix::unistd::Pid::from_raw(self.pid as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGTERM);
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(_) => tracing::info!(pid = self.pid, "stopped the backend server"),
            Err(_) => {
                tracing::warn!(
                    pid = self.pid,
                    "the backend server ignored SIGTERM for {grace:?}; killing it"
                );
                let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
                let _ = self.child.wait().await;
            }
        }
    }
}

/// Logs each line of the server's output (at debug level: llama-server logs every request) and keeps
/// the last ones. Ends when the server closes the pipe.
async fn log_lines(pipe: impl AsyncRead + Unpin, pid: u32, tail: OutputTail) {
    let mut reader = BufReader::new(pipe);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim_end();
        if line.is_empty() {
            continue;
        }
        tracing::debug!(target: "llmkernel::backend", pid, "{line}");
        tail.push(line.chars().take(TAIL_LINE_CHARS).collect());
    }
}

/// How a process ended, in words (`exit status 3`, `killed by SIGKILL`).
pub(super) fn describe_exit(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => match nix::sys::signal::Signal::try_from(sig) {
            Ok(s) => format!("killed by {s}"),
            Err(_) => format!("killed by signal {sig}"),
        },
        (None, None) => "ended".to_string(),
    }
}
