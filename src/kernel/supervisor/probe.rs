//! Asking the managed server whether it is ready, and how many slots it has.
//!
//! Ready: the configured `health_url` answers 2xx; without one, llama-server's `GET {root}/health`
//! (503 while it loads the model) and, for a server that has no such endpoint (404), `GET {url}/models`.
//! Slots: llama-server's `/props` (`total_slots`), else the length of its `/slots`, else `-np N` or
//! `--parallel N` in the command.
//!
//! Any backend, managed or not: [`check_server_slots`] learns its slot count at start-up and warns
//! when the kernel would run more processes at once than the server has slots ([`oversubscribed`]),
//! since the extra ones would queue inside the server in arrival order, out of the kernel's hands.

use crate::kernel::Kernel;
use crate::llm::{llamacpp_props, root_url};
use reqwest::StatusCode;
use std::sync::Arc;
use std::time::Duration;

/// How long one readiness or slot question may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Asks one server (its base URL, e.g. `http://127.0.0.1:5001/v1`).
pub(super) struct Probe {
    http: reqwest::Client,
    base: String,
    health_url: Option<String>,
}

impl Probe {
    pub(super) fn new(base: &str, health_url: Option<String>) -> Probe {
        let http = reqwest::Client::builder()
            .timeout(PROBE_TIMEOUT)
            .no_proxy()
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Probe {
            http,
            base: base.trim_end_matches('/').to_string(),
            health_url,
        }
    }

    /// The URL readiness is asked at first (for messages).
    pub(super) fn health_url(&self) -> String {
        self.health_url
            .clone()
            .unwrap_or_else(|| format!("{}/health", root_url(&self.base)))
    }

    async fn status(&self, url: &str) -> Option<StatusCode> {
        self.http.get(url).send().await.ok().map(|r| r.status())
    }

    async fn json(&self, url: &str) -> Option<serde_json::Value> {
        let resp = self.http.get(url).send().await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        resp.json().await.ok()
    }

    /// Whether the server is ready for generations now.
    pub(super) async fn ready(&self) -> bool {
        match self.status(&self.health_url()).await {
            Some(s) if s.is_success() => true,
            Some(StatusCode::NOT_FOUND) if self.health_url.is_none() => self
                .status(&format!("{}/models", self.base))
                .await
                .is_some_and(|s| s.is_success()),
            _ => false,
        }
    }

    /// The server's slot count, if it tells.
    pub(super) async fn slots(&self) -> Option<u32> {
        let root = root_url(&self.base);
        if let Some(Some(n)) = self
            .json(&format!("{root}/props"))
            .await
            .as_ref()
            .and_then(llamacpp_props)
        {
            return Some(n);
        }
        match self.json(&format!("{root}/slots")).await {
            Some(serde_json::Value::Array(slots)) if !slots.is_empty() => {
                u32::try_from(slots.len()).ok()
            }
            _ => None,
        }
    }
}

/// The first wait between asks to a backend that does not answer yet, doubled up to [`ASK_AT_MOST`].
const ASK_AGAIN: Duration = Duration::from_secs(1);
/// The longest wait between asks: one request a minute to a server that is down costs nothing.
const ASK_AT_MOST: Duration = Duration::from_secs(60);

/// What to tell the user when the kernel time-shares `cpus` slots on a server with fewer, if it does.
pub fn oversubscribed(cpus: u32, server_slots: u32) -> Option<String> {
    (cpus > server_slots).then(|| {
        format!(
            "--cpus {cpus} but the server has {server_slots} slot{}: {} of the kernel's processes \
             would wait inside the server in arrival order instead of by the kernel's scheduling; \
             use --cpus {server_slots}, or start the server with {cpus} slots (llama-server -np {cpus})",
            if server_slots == 1 { "" } else { "s" },
            cpus - server_slots
        )
    })
}

/// Asks the backend for its slot count (once it answers; the answer is kept for `sched`) and warns
/// in the log when the kernel has more slots than the server.
pub async fn check_server_slots(kernel: Arc<Kernel>) {
    let mut wait = ASK_AGAIN;
    loop {
        match kernel.backend().learn_slots().await {
            Ok(Some(slots)) => {
                let cpus = kernel.read(|s| s.config.cpus);
                match oversubscribed(cpus, slots) {
                    Some(warning) => tracing::warn!("{warning}"),
                    None => tracing::info!("the server has {slots} slots; the kernel uses {cpus}"),
                }
                return;
            }
            Ok(None) => return, // the server does not tell
            Err(_) => {}
        }
        tokio::select! {
            _ = kernel.shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(ASK_AT_MOST);
    }
}

/// The parallel slots a command line asks for: llama-server's `-np N`, `--parallel N` (or `=N`).
pub(super) fn slots_in_command(command: &[String]) -> Option<u32> {
    let is_flag = |a: &str| a == "-np" || a == "--parallel";
    command.iter().enumerate().find_map(|(i, arg)| {
        let value = match arg.split_once('=') {
            Some((flag, value)) if is_flag(flag) => value,
            _ if is_flag(arg) => command.get(i + 1)?,
            _ => return None,
        };
        value.parse().ok().filter(|n| *n >= 1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_cpus_than_server_slots_is_named_with_both_numbers() {
        let warning = oversubscribed(4, 2).expect("a warning");
        assert!(
            warning.starts_with("--cpus 4 but the server has 2 slots: 2 of"),
            "{warning}"
        );
        assert!(warning.contains("use --cpus 2"), "{warning}");
        assert!(oversubscribed(1, 1).is_none() && oversubscribed(2, 4).is_none());
        assert!(oversubscribed(2, 1).unwrap().contains("has 1 slot:"));
    }

    #[test]
    fn slots_come_from_np_or_parallel_in_any_form() {
        let cmd = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        for (line, slots) in [
            ("llama-server -m m.gguf -np 4", Some(4)),
            ("llama-server --parallel 2 --port 1", Some(2)),
            ("llama-server --parallel=3", Some(3)),
            ("llama-server -np=5", Some(5)),
            ("llama-server -np", None),
            ("llama-server -np 0", None),
            ("llama-server -np x", None),
            ("ollama serve", None),
        ] {
            assert_eq!(slots_in_command(&cmd(line)), slots, "{line}");
        }
    }
}
