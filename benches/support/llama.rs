//! A real llama-server for the benches that need one (SmolLM2-135M from `scripts/llama-server`'s
//! cache), on a free port, killed when dropped; or why there is none.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a model load may take on a loaded machine.
const READY_WITHIN: Duration = Duration::from_secs(120);

/// A llama-server of our own; killed when dropped.
pub struct LlamaServer {
    child: Child,
    /// Its OpenAI base URL (`http://127.0.0.1:PORT/v1`).
    pub url: String,
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts llama-server from the cache with `slots` slots of `context_per_slot` tokens and `extra`
/// arguments, and waits until it is ready; or says why not (a note for the summary).
pub async fn start(
    slots: u32,
    context_per_slot: u32,
    extra: &[&str],
) -> Result<LlamaServer, String> {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(Path::new(root).join("scripts/llama-server"))
        .arg("paths")
        .output()
        .map_err(|e| format!("cannot run scripts/llama-server: {e}"))?;
    let paths = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = paths.lines();
    let (Some(bin), Some(model), true) = (lines.next(), lines.next(), out.status.success()) else {
        return Err("skipped: llama-server is not set up (run scripts/llama-server setup)".into());
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let ctx = (context_per_slot * slots).to_string();
    let child = Command::new(bin)
        .args([
            "-m",
            model,
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
        ])
        .args(["-np", &slots.to_string(), "-c", &ctx])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start llama-server: {e}"))?;
    let server = LlamaServer {
        child,
        url: format!("http://127.0.0.1:{port}/v1"),
    };
    let health = format!("http://127.0.0.1:{port}/health");
    let deadline = Instant::now() + READY_WITHIN;
    while !reqwest::get(&health)
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        if Instant::now() > deadline {
            return Err(format!(
                "llama-server did not get ready in {READY_WITHIN:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(server)
}
