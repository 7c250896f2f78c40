//! The e2e harness: a real llama-server (from `scripts/llama-server`'s cache) on a free loopback port,
//! the real `llmkernel` started with `--daemon` (whose parent returns once the kernel accepts
//! connections) on a temporary socket, `llmsh` run as a user runs it, and an in-process client for
//! polling state quickly. Tests run one at a time (llama-server shares the machine's cores), wait for
//! conditions with generous deadlines (generation speed here varies from 5 to 130 tokens/s), and stop
//! whatever they started when they end, even by panicking.

use llmkernel::proto::{OutputRequest, Pid, ProcessInfo, Request, Response};
use llmkernel::shell::client::Client;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const KERNEL: &str = env!("CARGO_BIN_EXE_llmkernel");
pub const SHELL: &str = env!("CARGO_BIN_EXE_llmsh");
pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// How long any one condition may take to come true (a model load, a few dozen tokens at 5/s).
pub const STEP: Duration = Duration::from_secs(120);

/// One e2e test at a time: they share two cores with llama-server.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The llama-server binary and model, when `scripts/llama-server setup` has cached them.
#[derive(Clone, Debug)]
pub struct Llama {
    pub bin: PathBuf,
    pub model: PathBuf,
    _serial: std::sync::Arc<tokio::sync::MutexGuard<'static, ()>>,
}

/// The cached llama-server and model, holding the e2e lock; `None` (with the reason printed) when
/// they are not set up, and the test should return: `let Some(llama) = setup().await else { return };`
pub async fn setup() -> Option<Llama> {
    let out = Command::new(Path::new(ROOT).join("scripts/llama-server"))
        .arg("paths")
        .output();
    let paths = match out {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        _ => {
            eprintln!(
                "skipped: llama-server and its model are not set up (run `scripts/llama-server setup`)"
            );
            return None;
        }
    };
    let mut lines = paths.lines();
    let (Some(bin), Some(model)) = (lines.next(), lines.next()) else {
        eprintln!("skipped: `scripts/llama-server paths` printed {paths:?}");
        return None;
    };
    let serial = SERIAL.lock().await;
    Some(Llama {
        bin: bin.into(),
        model: model.into(),
        _serial: std::sync::Arc::new(serial),
    })
}

/// A free loopback TCP port.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

impl Llama {
    /// The llama-server command line for `slots` parallel slots on `port` (2048 tokens of context each).
    pub fn command(&self, port: u16, slots: u32) -> Vec<String> {
        let ctx = (2048 * slots).to_string();
        let mut cmd = vec![self.bin.display().to_string()];
        cmd.extend(
            [
                "-m",
                &self.model.display().to_string(),
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "-np",
                &slots.to_string(),
                "-c",
                &ctx,
            ]
            .map(String::from),
        );
        cmd
    }

    /// Starts a llama-server of our own and waits until it is ready.
    pub async fn server(&self, slots: u32) -> LlamaServer {
        self.server_with(slots, &[]).await
    }

    /// As [`Llama::server`], with `extra` arguments (e.g. `--slot-save-path DIR`).
    pub async fn server_with(&self, slots: u32, extra: &[&str]) -> LlamaServer {
        let port = free_port();
        let command = self.command(port, slots);
        let child = Command::new(&command[0])
            .args(&command[1..])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start llama-server");
        let server = LlamaServer {
            child,
            root: format!("http://127.0.0.1:{port}"),
        };
        eventually("llama-server to load its model", || server.healthy()).await;
        server
    }
}

/// A llama-server this test started; killed when dropped.
pub struct LlamaServer {
    child: Child,
    pub root: String,
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl LlamaServer {
    /// The OpenAI-compatible base URL.
    pub fn url(&self) -> String {
        format!("{}/v1", self.root)
    }

    pub async fn healthy(&self) -> bool {
        healthy(&self.root).await
    }

    /// `GET /slots`: for each slot, whether it is generating and how many tokens it has decoded.
    pub async fn slots(&self) -> Vec<(bool, u64)> {
        let Ok(resp) = reqwest::get(format!("{}/slots", self.root)).await else {
            return Vec::new();
        };
        let slots: serde_json::Value = resp.json().await.unwrap_or_default();
        slots
            .as_array()
            .map(|slots| {
                slots
                    .iter()
                    .map(|s| {
                        let busy = s["is_processing"].as_bool().unwrap_or(false);
                        (busy, s["next_token"][0]["n_decoded"].as_u64().unwrap_or(0))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Whether a llama-server at `root` answers `/health` with 200 (it says 503 while loading).
pub async fn healthy(root: &str) -> bool {
    reqwest::get(format!("{root}/health"))
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// Waits until `cond` holds, asking every 20 ms, or panics after [`STEP`].
pub async fn eventually<F: Future<Output = bool>>(what: &str, cond: impl Fn() -> F) {
    let deadline = tokio::time::Instant::now() + STEP;
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {STEP:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A kernel started with `--daemon`; stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Kernel {
    /// Holds the socket, pidfile and state; removed when dropped.
    _dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub pid: i32,
}

impl Kernel {
    /// `llmkernel --daemon ARGS…` on a temporary socket and state directory; returns once it
    /// accepts connections (with a managed backend: once its server is ready).
    pub async fn start(args: &[&str]) -> Kernel {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("llmkernel.sock");
        let pidfile = dir.path().join("llmkernel.pid");
        let out = tokio::process::Command::new(KERNEL)
            .arg("--daemon")
            .arg("--pidfile")
            .arg(&pidfile)
            .arg("--socket")
            .arg(&socket)
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .args(args)
            .env("XDG_CONFIG_HOME", dir.path())
            .env("XDG_RUNTIME_DIR", dir.path())
            .env_remove("NOTIFY_SOCKET")
            .env_remove("LISTEN_FDS")
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .output();
        let out = tokio::time::timeout(STEP, out)
            .await
            .expect("llmkernel --daemon returned in time")
            .expect("run llmkernel");
        assert!(
            out.status.success(),
            "llmkernel did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pid = std::fs::read_to_string(&pidfile)
            .expect("pidfile")
            .trim()
            .parse()
            .expect("pid");
        Kernel {
            _dir: dir,
            socket,
            pid,
        }
    }

    /// Runs `llmsh -c COMMANDS`; returns (status, stdout, stderr).
    pub async fn sh(&self, commands: &str) -> (i32, String, String) {
        let out = tokio::process::Command::new(SHELL)
            .arg("--socket")
            .arg(&self.socket)
            .arg("-c")
            .arg(commands)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(STEP * 2, out)
            .await
            .expect("llmsh finished in time")
            .expect("run llmsh");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Starts `query ARGS &` and returns its pid.
    pub async fn background(&self, query: &str) -> Pid {
        let (status, stdout, stderr) = self.sh(&format!("{query} &")).await;
        assert_eq!(status, 0, "{stderr}");
        let pid = stdout
            .split_once("] ")
            .and_then(|(_, p)| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("no `[JOB] PID` in {stdout:?}"));
        Pid(pid)
    }

    /// The `ps` row of `pid`, through the library client (fast enough to poll).
    pub async fn process(&self, pid: Pid) -> Option<ProcessInfo> {
        let mut c = Client::connect(&self.socket).await.ok()?;
        let list = llmkernel::proto::ListRequest { all_users: true };
        match c.call(Request::List(list)).await {
            Ok(Response::Processes(l)) => l.processes.into_iter().find(|p| p.pid == pid),
            _ => None,
        }
    }

    /// A process's output so far (`cat`).
    pub async fn output(&self, pid: Pid) -> String {
        let mut c = Client::connect(&self.socket).await.expect("connect");
        let req = OutputRequest { pid, follow: false };
        match c.call(Request::Output(req)).await {
            Ok(Response::Output(chunk)) => chunk.text,
            other => panic!("cat {pid}: {other:?}"),
        }
    }

    /// Stops the kernel with SIGTERM and waits for it to exit.
    pub async fn stop(&self) {
        signal(self.pid, nix::sys::signal::Signal::SIGTERM);
        eventually("the kernel to exit", || async { !alive(self.pid) }).await;
    }
}

impl Drop for Kernel {
    fn drop(&mut self) {
        signal(self.pid, nix::sys::signal::Signal::SIGKILL);
    }
}

pub fn signal(pid: i32, sig: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
}

pub fn alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z'))
        })
}

/// The live child processes of `parent` (from /proc).
pub fn children(parent: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                // `pid (comm) state ppid …`; comm may hold spaces, so read after the last `)`.
                let mut rest = stat
                    .rsplit_once(") ")
                    .map(|(_, r)| r)
                    .unwrap_or("")
                    .split(' ');
                let state = rest.next();
                let ppid = rest.next().and_then(|p| p.parse::<i32>().ok());
                ppid == Some(parent) && state != Some("Z")
            })
        })
        .collect()
}

/// The column named `name` of `pid`'s row in a `ps` table.
pub fn ps_column(ps: &str, pid: Pid, name: &str) -> Option<String> {
    let mut lines = ps.lines();
    let index = lines.next()?.split_whitespace().position(|c| c == name)?;
    lines
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cols| cols.first() == Some(&pid.0.to_string().as_str()))
        .and_then(|cols| cols.get(index).map(|c| c.to_string()))
}

/// Words with letters in `text` (a real answer has several).
pub fn words(text: &str) -> usize {
    text.split_whitespace()
        .filter(|w| w.chars().any(char::is_alphabetic))
        .count()
}
