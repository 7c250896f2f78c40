//! Watching a kernel the way systemd does: a NOTIFY_SOCKET that keeps every message (READY, STATUS,
//! RELOADING, STOPPING, WATCHDOG), the kernel's log in a file, a config file to rewrite before a
//! SIGHUP, and a private `$XDG_RUNTIME_DIR`.

use super::{KERNEL, STEP, TestKernel};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::net::UnixDatagram;
use tokio::process::Command;

/// A notify socket that remembers what it received.
pub struct NotifySocket {
    socket: UnixDatagram,
    pub path: PathBuf,
    /// Every message so far, in order.
    pub messages: Vec<String>,
}

impl NotifySocket {
    pub fn bind(dir: &Path) -> NotifySocket {
        let path = dir.join("notify");
        let socket = UnixDatagram::bind(&path).expect("bind notify socket");
        NotifySocket {
            socket,
            path,
            messages: Vec::new(),
        }
    }

    /// Waits for the next message that satisfies `cond` (skipping others); returns it.
    pub async fn next_matching(&mut self, what: &str, cond: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + STEP;
        let mut buf = vec![0u8; 4096];
        loop {
            let n = tokio::time::timeout_at(deadline, self.socket.recv(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("no {what} on NOTIFY_SOCKET; got {:?}", self.messages))
                .expect("recv notify");
            // One assignment a line; a final newline (as sd-notify ends each) says nothing more.
            let message = String::from_utf8_lossy(&buf[..n])
                .trim_end_matches('\n')
                .to_string();
            self.messages.push(message.clone());
            if cond(&message) {
                return message;
            }
        }
    }

    /// Waits for a message with the line `line` (e.g. `READY=1`).
    pub async fn next_with_line(&mut self, line: &str) -> String {
        self.next_matching(line, |m| m.lines().any(|l| l == line))
            .await
    }
}

/// A kernel started with a config file, a log file, a private runtime dir and a notify socket.
pub struct ObservedKernel {
    pub kernel: TestKernel,
    pub notify: NotifySocket,
    pub config: PathBuf,
    pub log: PathBuf,
}

impl ObservedKernel {
    /// Starts `llmkernel --config FILE ARGS…` with `config` as the file and `env` added, and waits
    /// for READY=1.
    pub async fn start(
        backend: &str,
        config: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> ObservedKernel {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("llmkernel.sock");
        let config_path = dir.path().join("config.toml");
        std::fs::write(&config_path, config).expect("write config");
        let runtime_dir = dir.path().join("run");
        std::fs::create_dir(&runtime_dir).expect("runtime dir");
        let log = dir.path().join("kernel.log");
        let mut notify = NotifySocket::bind(dir.path());
        let child = Command::new(KERNEL)
            .arg("--socket")
            .arg(&socket)
            .arg("--backend")
            .arg(backend)
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .arg("--config")
            .arg(&config_path)
            .args(args)
            .env("NOTIFY_SOCKET", &notify.path)
            .env("XDG_RUNTIME_DIR", &runtime_dir)
            .env("RUST_LOG", "info")
            .env_remove("LISTEN_FDS")
            .env_remove("WATCHDOG_USEC")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .kill_on_drop(true)
            .spawn()
            .expect("spawn llmkernel");
        notify.next_with_line("READY=1").await;
        ObservedKernel {
            kernel: TestKernel { child, socket, dir },
            notify,
            config: config_path,
            log,
        }
    }

    /// The kernel's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The default interrupt spool: the socket's path with `.interrupts` added.
    pub fn spool(&self) -> PathBuf {
        let mut spool = self.kernel.socket.clone().into_os_string();
        spool.push(".interrupts");
        PathBuf::from(spool)
    }
}
