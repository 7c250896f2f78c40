//! The TOML config file (`~/.config/llmkernel/config.toml`). Every key is optional and overlays the
//! defaults; an unknown key or a bad value is an error naming the key and the line.

use super::interrupts::InterruptsSection;
use super::scheduler::SchedulerSection;
use super::{KernelConfig, PolicyKind};
use crate::llm::BackendKind;
use crate::proto::ProcessType;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a config file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub socket: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub cpus: Option<u32>,
    pub quantum: Option<u32>,
    pub policy: Option<PolicyKind>,
    pub aging: Option<u32>,
    pub log_level: Option<String>,
    /// Seconds finished output is kept when nobody collects it.
    pub retention_secs: Option<f64>,
    /// Journal records between compactions.
    pub journal_compact_records: Option<u64>,
    #[serde(default)]
    pub backend: BackendSection,
    #[serde(default)]
    pub limits: LimitsSection,
    /// `[scheduler]`: the slots kept for interactive work, and the switch guard and margin.
    #[serde(default)]
    pub scheduler: SchedulerSection,
    /// Per-type overrides keyed by type name (`[types.USER]`).
    #[serde(default)]
    pub types: BTreeMap<String, TypeSection>,
    /// `[interrupts.system]` and `[interrupts.timer]`: the handlers of the interrupt lines.
    #[serde(default)]
    pub interrupts: InterruptsSection,
    /// `[http]`: the OpenAI-compatible front door.
    #[serde(default)]
    pub http: super::http::HttpSection,
    /// `[metrics]`: where GET /metrics is served.
    #[serde(default)]
    pub metrics: MetricsSection,
    /// `[swap]`: slot caches saved to disk.
    #[serde(default)]
    pub swap: SwapSection,
    /// `[[backends]]`: several servers scheduled as one machine.
    #[serde(default)]
    pub backends: Vec<super::backends::BackendsEntry>,
    /// `[quotas]`: tokens per window per user and per type.
    #[serde(default)]
    pub quotas: super::quotas::QuotasSection,
    /// `[soft_limit]`: when a process is told to wrap up before its allowance.
    #[serde(default)]
    pub soft_limit: super::soft_limit::SoftLimitSection,
    /// `[syscalls]`: the limits on LLM processes' system calls.
    #[serde(default)]
    pub syscalls: super::syscalls::SyscallsSection,
}

/// `[metrics]`: the Prometheus endpoint.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    /// A loopback address and port (`127.0.0.1:9464`) to serve GET /metrics on; none by default.
    pub listen: Option<String>,
}

/// Reads `[metrics] listen`: an address and port on loopback only (the metrics name prompts' types
/// and counts, and nothing authenticates a scraper).
pub fn metrics_listen(text: &str) -> Result<std::net::SocketAddr, String> {
    let addr: std::net::SocketAddr = text
        .parse()
        .map_err(|_| format!("`{text}` is not an address and port such as 127.0.0.1:9464"))?;
    if !addr.ip().is_loopback() {
        return Err(format!(
            "{} is not a loopback address: metrics are served on 127.0.0.1 or ::1 only",
            addr.ip()
        ));
    }
    Ok(addr)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwapSection {
    /// The directory llama-server was given as `--slot-save-path`.
    pub dir: Option<PathBuf>,
    pub max_bytes: Option<u64>,
    pub min_tokens: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendSection {
    pub url: Option<String>,
    pub model: Option<String>,
    /// Name of the environment variable holding the API key (the key itself stays out of the file).
    pub api_key_env: Option<String>,
    /// `auto` (learn it), `llamacpp`, `vllm` or `openai` (no extras).
    pub kind: Option<BackendKind>,
    pub connect_timeout_secs: Option<f64>,
    pub first_token_timeout_secs: Option<f64>,
    pub token_timeout_secs: Option<f64>,
    /// Seconds to wait before the first retry of a failing backend; doubles up to `backoff_max_secs`.
    pub backoff_initial_secs: Option<f64>,
    pub backoff_max_secs: Option<f64>,
    /// Seconds a process keeps retrying without progress before it fails.
    pub retry_for_secs: Option<f64>,
    /// Retries a process gets before it fails (default: as many as `retry_for_secs` allows).
    pub max_retries: Option<u32>,
    /// Tries in all for a request the backend fails on its own while its health check answers.
    pub request_attempts: Option<u32>,
    /// A server for the kernel to start and supervise: program and arguments.
    pub command: Option<Vec<String>>,
    /// Its readiness URL (default: llama-server's `/health`, else `GET {url}/models`).
    pub health_url: Option<String>,
    /// How long it may take to become ready.
    pub startup_timeout_secs: Option<f64>,
    /// Tokens one slot's context holds, for a server that does not say.
    pub context: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    pub max_allowance_tokens: Option<u32>,
    pub max_prompt_bytes: Option<usize>,
    pub max_output_bytes: Option<usize>,
    pub max_queue: Option<usize>,
    pub max_connections: Option<usize>,
    /// Connections one uid may hold at once.
    pub max_connections_per_uid: Option<usize>,
    /// Seconds a peer may stall inside a frame, sending a request or taking a reply.
    pub stall_timeout_secs: Option<f64>,
    pub handshake_timeout_secs: Option<f64>,
    pub idle_timeout_secs: Option<f64>,
    /// Members of this group may use the kernel too (a shared kernel).
    pub allowed_group: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypeSection {
    pub base_priority: Option<u8>,
    pub allowance: Option<u32>,
}

impl ConfigFile {
    /// Reads and validates a file.
    pub fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        ConfigFile::parse(&text, path)
    }

    /// Reads the file if it exists; a missing default file is an empty config.
    pub fn load_optional(path: &Path) -> Result<ConfigFile, ConfigError> {
        if path.exists() {
            ConfigFile::load(path)
        } else {
            Ok(ConfigFile::default())
        }
    }

    pub fn parse(text: &str, path: &Path) -> Result<ConfigFile, ConfigError> {
        let invalid = |offset: Option<usize>, message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            line: offset.map_or(1, |o| text[..o.min(text.len())].matches('\n').count() + 1),
            message,
        };
        let file: ConfigFile = toml::from_str(text).map_err(|e| {
            let at = e.span().map(|s| s.start);
            invalid(at, naming_the_key(text, at, e.message()))
        })?;
        let key_line = |key: &str| {
            text.lines()
                .position(|l| l.trim_start().starts_with(key))
                .map(|n| text.lines().take(n).map(|l| l.len() + 1).sum())
        };
        let check = |ok: bool, key: &str, message: &str| {
            if ok {
                Ok(())
            } else {
                Err(invalid(key_line(key), format!("`{key}` {message}")))
            }
        };
        check(
            file.cpus.is_none_or(|n| (1..=256).contains(&n)),
            "cpus",
            "must be 1 to 256",
        )?;
        check(
            file.quantum.is_none_or(|n| n >= 1),
            "quantum",
            "must be at least 1 token",
        )?;
        check(
            file.limits.max_connections_per_uid.is_none_or(|n| n >= 1),
            "max_connections_per_uid",
            "must be at least 1",
        )?;
        if let Some(Err(message)) = file
            .backend
            .url
            .as_deref()
            .map(super::backend_url::check_backend_url)
        {
            let offset = section_key_line(text, "[backend]", "url");
            return Err(invalid(offset, format!("`url` in [backend]: {message}")));
        }
        check(
            file.backend
                .command
                .as_ref()
                .is_none_or(|c| c.first().is_some_and(|p| !p.is_empty())),
            "command",
            "must start with the program to run",
        )?;
        for name in file.types.keys() {
            check(
                name.parse::<ProcessType>().is_ok(),
                &format!("[types.{name}]"),
                "is not a process type",
            )?;
        }
        for (key, v) in [
            ("connect_timeout_secs", file.backend.connect_timeout_secs),
            (
                "first_token_timeout_secs",
                file.backend.first_token_timeout_secs,
            ),
            ("token_timeout_secs", file.backend.token_timeout_secs),
            ("backoff_initial_secs", file.backend.backoff_initial_secs),
            ("backoff_max_secs", file.backend.backoff_max_secs),
            ("startup_timeout_secs", file.backend.startup_timeout_secs),
            ("handshake_timeout_secs", file.limits.handshake_timeout_secs),
            ("idle_timeout_secs", file.limits.idle_timeout_secs),
            ("stall_timeout_secs", file.limits.stall_timeout_secs),
            ("retention_secs", file.retention_secs),
        ] {
            check(
                v.is_none_or(|s| s > 0.0 && s < 1e6),
                key,
                "must be a positive number of seconds",
            )?;
        }
        check(
            file.backend
                .retry_for_secs
                .is_none_or(|s| (0.0..1e6).contains(&s)),
            "retry_for_secs",
            "must be 0 or a positive number of seconds",
        )?;
        check(
            file.limits
                .max_prompt_bytes
                .is_none_or(|n| (1..=super::MAX_PROMPT_BYTES_LIMIT).contains(&n)),
            "max_prompt_bytes",
            &format!(
                "must be between 1 and {} (a prompt must fit one journal record)",
                super::MAX_PROMPT_BYTES_LIMIT
            ),
        )?;
        check(
            file.limits.max_output_bytes.is_none_or(|n| n > 0),
            "max_output_bytes",
            "must be a positive number of bytes",
        )?;
        check(
            file.backend.context.is_none_or(|n| n >= 1),
            "context",
            "must be at least 1 token",
        )?;
        check(
            file.backend.request_attempts.is_none_or(|n| n >= 1),
            "request_attempts",
            "must be at least 1",
        )?;
        if let Err((key, message)) = file.scheduler.validate() {
            let offset = section_key_line(text, "[scheduler]", key);
            return Err(invalid(offset, format!("`{key}` in [scheduler] {message}")));
        }
        if let Err((key, message)) = file.http.validate() {
            return Err(invalid(section_key_line(text, "[http]", key), message));
        }
        if let Some(Err(e)) = file.metrics.listen.as_deref().map(metrics_listen) {
            let offset = section_key_line(text, "[metrics]", "listen");
            return Err(invalid(offset, format!("`listen` in [metrics] {e}")));
        }
        if let Err(message) = super::backends::check_file(&file.backends) {
            let offset = text.find("[[backends]]");
            return Err(invalid(offset, message));
        }
        if let Err((key, message)) = super::quotas::resolve(&file.quotas) {
            let offset = section_key_line(text, "[quotas]", &key);
            return Err(invalid(offset, format!("`{key}` in [quotas]: {message}")));
        }
        if let Err((key, message)) = file.soft_limit.resolve() {
            let offset = section_key_line(text, "[soft_limit]", key);
            return Err(invalid(
                offset,
                format!("`{key}` in [soft_limit] {message}"),
            ));
        }
        if let Err(e) = file.interrupts.validate() {
            let offset = section_key_line(text, e.section, e.key);
            return Err(invalid(
                offset,
                format!("`{}` in {} {}", e.key, e.section, e.message),
            ));
        }
        Ok(file)
    }

    /// Overlays this file on `c`.
    pub fn apply(&self, c: &mut KernelConfig) {
        let b = &self.backend;
        set(&mut c.backend_url, b.url.clone());
        if b.model.is_some() {
            c.model = b.model.clone();
        }
        set(&mut c.backend_kind, b.kind);
        if let Some(var) = &b.api_key_env {
            c.api_key = std::env::var(var).ok();
        }
        let secs = |v: Option<f64>| v.map(Duration::from_secs_f64);
        set(&mut c.connect_timeout, secs(b.connect_timeout_secs));
        set(&mut c.first_token_timeout, secs(b.first_token_timeout_secs));
        set(&mut c.token_timeout, secs(b.token_timeout_secs));
        set(&mut c.retry.backoff_initial, secs(b.backoff_initial_secs));
        set(&mut c.retry.backoff_max, secs(b.backoff_max_secs));
        set(&mut c.retry.retry_for, secs(b.retry_for_secs));
        if b.max_retries.is_some() {
            c.retry.max_retries = b.max_retries;
        }
        set(&mut c.retry.request_attempts, b.request_attempts);
        if let Some(command) = &b.command {
            c.managed_backend = Some(super::ManagedBackend {
                command: command.clone(),
                health_url: b.health_url.clone(),
                startup_timeout: secs(b.startup_timeout_secs)
                    .unwrap_or(super::DEFAULT_STARTUP_TIMEOUT),
            });
        }
        set(&mut c.cpus, self.cpus);
        set(&mut c.quantum_tokens, self.quantum);
        set(&mut c.policy, self.policy);
        set(&mut c.aging_points_per_sec, self.aging);
        self.scheduler.apply(&mut c.scheduler);
        set(&mut c.state_dir, self.state_dir.clone());
        set(
            &mut c.max_allowance_tokens,
            self.limits.max_allowance_tokens,
        );
        set(&mut c.max_prompt_bytes, self.limits.max_prompt_bytes);
        set(&mut c.max_output_bytes, self.limits.max_output_bytes);
        set(&mut c.max_queue, self.limits.max_queue);
        set(&mut c.retention, secs(self.retention_secs));
        set(&mut c.journal_compact_records, self.journal_compact_records);
        set(&mut c.max_connections, self.limits.max_connections);
        set(
            &mut c.max_connections_per_uid,
            self.limits.max_connections_per_uid,
        );
        set(&mut c.stall_timeout, secs(self.limits.stall_timeout_secs));
        set(
            &mut c.handshake_timeout,
            secs(self.limits.handshake_timeout_secs),
        );
        set(&mut c.idle_timeout, secs(self.limits.idle_timeout_secs));
        if self.limits.allowed_group.is_some() {
            c.allowed_group = self.limits.allowed_group.clone();
        }
        for (name, section) in &self.types {
            let Ok(t) = name.parse::<ProcessType>() else {
                continue;
            };
            let index = ProcessType::ALL.iter().position(|x| *x == t).unwrap_or(0);
            set(&mut c.types[index].base_priority, section.base_priority);
            set(&mut c.types[index].allowance_tokens, section.allowance);
        }
        self.interrupts.apply(&mut c.interrupts);
        self.http.apply(&mut c.http);
        if let Ok(quotas) = super::quotas::resolve(&self.quotas) {
            c.quotas = quotas;
        }
        if let Ok(soft_limit) = self.soft_limit.resolve() {
            c.soft_limit = soft_limit;
        }
        if let Some(Ok(addr)) = self.metrics.listen.as_deref().map(metrics_listen) {
            c.metrics_listen = Some(addr);
        }
        if b.context.is_some() {
            c.context_tokens = b.context;
        }
        if self.swap.dir.is_some() {
            c.swap.dir = self.swap.dir.clone();
        }
        set(&mut c.swap.max_bytes, self.swap.max_bytes);
        set(&mut c.swap.min_tokens, self.swap.min_tokens);
        c.backends = super::backends::resolve(&self.backends).unwrap_or_default();
        self.syscalls.apply(&mut c.syscalls);
    }
}

/// The byte offset of `key` inside `[section]` (the first line after the header that starts with it).
fn section_key_line(text: &str, section: &str, key: &str) -> Option<usize> {
    let mut offset = 0;
    let mut inside = false;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            inside = trimmed == section;
        } else if inside && trimmed.starts_with(key) {
            return Some(offset);
        }
        offset += line.len();
    }
    None
}

/// A TOML error's message, with the key it is about in front when the message does not name it
/// already (`` `policy`: unknown variant `lottery`, expected one of `priority`, … ``): toml names the
/// line, and a value's type error alone does not say which setting is wrong.
fn naming_the_key(text: &str, at: Option<usize>, message: &str) -> String {
    let line = at.and_then(|at| {
        let start = text.get(..at)?.rfind('\n').map_or(0, |n| n + 1);
        text.get(start..)?.lines().next()
    });
    let key = line
        .and_then(|l| l.split_once('='))
        .map(|(key, _)| key.trim())
        .filter(|key| {
            !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        });
    match key {
        Some(key) if !message.contains(&format!("`{key}`")) => format!("`{key}`: {message}"),
        _ => message.to_string(),
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ConfigFile, ConfigError> {
        ConfigFile::parse(text, Path::new("c.toml"))
    }

    #[test]
    fn values_overlay_defaults() {
        let f = parse("cpus = 4\nquantum = 16\n[backend]\nurl = \"http://x:1/v1\"\n[types.USER]\nallowance = 10\n")
            .unwrap();
        let c = KernelConfig::from_file(&f);
        assert_eq!((c.cpus, c.quantum_tokens), (4, 16));
        assert_eq!(c.backend_url, "http://x:1/v1");
        assert_eq!(c.type_settings(ProcessType::User).allowance_tokens, 10);
        assert_eq!(c.type_settings(ProcessType::System).allowance_tokens, 3000);
    }

    #[test]
    fn unknown_key_is_an_error_naming_key_and_line() {
        let err = parse("cpus = 2\ncpu_count = 3\n").unwrap_err().to_string();
        assert!(
            err.contains("c.toml:2") && err.contains("cpu_count"),
            "{err}"
        );
    }

    #[test]
    fn out_of_range_value_is_an_error_naming_key_and_line() {
        let err = parse("\n\ncpus = 0\n").unwrap_err().to_string();
        assert!(err.contains("c.toml:3") && err.contains("cpus"), "{err}");
        let err = parse("cpus = 2\npolicy = \"lottery\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("c.toml:2: `policy`: ") && err.contains("`lottery`"),
            "{err}"
        );
        assert!(err.contains("`priority`, `rr`, `fair`, `mlfq`"), "{err}");
        let err = parse("[backend]\nkind = \"tgi\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("c.toml:2: `kind`: "), "{err}");
        assert!(err.contains("`llamacpp`, `vllm`, `openai`"), "{err}");
        let f = parse("policy = \"mlfq\"\n[backend]\nkind = \"llamacpp\"\n").unwrap();
        let c = KernelConfig::from_file(&f);
        assert_eq!(c.backend_kind, crate::llm::BackendKind::LlamaCpp);
        assert_eq!(c.policy, PolicyKind::Mlfq);
        let c = KernelConfig::from_file(&parse("policy = \"rr\"\n").unwrap());
        assert_eq!(c.policy, PolicyKind::RoundRobin);
    }

    #[test]
    fn every_backend_kind_is_read_by_its_name_in_the_file_and_on_a_command_line() {
        use clap::ValueEnum;
        for kind in crate::llm::BackendKind::ALL {
            let f = parse(&format!("[backend]\nkind = \"{}\"\n", kind.name())).unwrap();
            assert_eq!(KernelConfig::from_file(&f).backend_kind, kind);
            let value = kind.to_possible_value().map(|v| v.get_name().to_string());
            assert_eq!(value.as_deref(), Some(kind.name()));
        }
    }

    #[test]
    fn retry_settings_overlay_defaults_and_bad_ones_are_named() {
        let text = "[backend]\nbackoff_initial_secs = 0.1\nbackoff_max_secs = 2\nretry_for_secs = 0\nmax_retries = 3\nrequest_attempts = 5\n";
        let c = KernelConfig::from_file(&parse(text).unwrap());
        assert_eq!(
            c.retry,
            crate::config::RetrySettings {
                backoff_initial: Duration::from_millis(100),
                backoff_max: Duration::from_secs(2),
                retry_for: Duration::ZERO,
                max_retries: Some(3),
                request_attempts: 5,
            }
        );
        assert_eq!(KernelConfig::default().retry.request_attempts, 3);
        let err = parse("[backend]\nrequest_attempts = 0\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("request_attempts"), "{err}");
        let d = KernelConfig::default().retry;
        assert_eq!(
            (d.backoff_initial, d.backoff_max, d.retry_for, d.max_retries),
            (
                Duration::from_millis(500),
                Duration::from_secs(30),
                Duration::from_secs(600),
                None
            )
        );
        let err = parse("[backend]\nbackoff_max_secs = 0\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("c.toml:2") && err.contains("backoff_max_secs"),
            "{err}"
        );
        let err = parse("[backend]\nretry_for_secs = -1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("retry_for_secs"), "{err}");
    }

    #[test]
    fn backend_command_makes_a_managed_backend_and_must_name_a_program() {
        let f = parse(
            "[backend]\ncommand = [\"llama-server\", \"-np\", \"2\"]\nstartup_timeout_secs = 5\n",
        )
        .unwrap();
        let managed = KernelConfig::from_file(&f).managed_backend.unwrap();
        assert_eq!(managed.command, ["llama-server", "-np", "2"]);
        assert_eq!(managed.startup_timeout, Duration::from_secs(5));
        assert_eq!(managed.health_url, None);
        assert!(
            KernelConfig::from_file(&parse("").unwrap())
                .managed_backend
                .is_none()
        );
        let err = parse("[backend]\ncommand = []\n").unwrap_err().to_string();
        assert!(err.contains("c.toml:2") && err.contains("command"), "{err}");
    }

    #[test]
    fn scheduler_section_overlays_defaults_and_bad_values_are_named() {
        let text = "[scheduler]\nreserved_slots = 2\ninteractive_type = \"SYSTEM\"\nreservation_window_secs = 0.5\nswitch_guard_quanta = 0\nswitch_margin_quanta = 3\n";
        let s = KernelConfig::from_file(&parse(text).unwrap()).scheduler;
        assert_eq!(
            s,
            crate::config::SchedulerSettings {
                reserved_slots: Some(2),
                interactive_type: ProcessType::System,
                reservation_window: Duration::from_millis(500),
                switch_guard_quanta: 0,
                switch_margin_quanta: 3,
            }
        );
        let err = parse("cpus = 2\n[scheduler]\ninteractive_type = \"BOSS\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("c.toml:3") && err.contains("interactive_type"),
            "{err}"
        );
        let err = parse("[scheduler]\nreservation_window_secs = -1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("reservation_window_secs"), "{err}");
    }

    #[test]
    fn metrics_listen_must_be_a_loopback_address() {
        let c = parse("[metrics]\nlisten = \"127.0.0.1:9464\"\n").unwrap();
        assert_eq!(c.metrics.listen.as_deref(), Some("127.0.0.1:9464"));
        for bad in ["0.0.0.0:9464", "192.168.1.2:80", "localhost", "[::]:1"] {
            let err = parse(&format!("[metrics]\nlisten = \"{bad}\"\n"))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("c.toml:2") && err.contains("[metrics]"),
                "{err}"
            );
        }
        assert!(parse("[metrics]\nlisten = \"[::1]:9464\"\n").is_ok());
    }

    #[test]
    fn bad_interrupt_value_names_section_key_and_line() {
        let text = "[interrupts.system]\nmax_waiting = 3\n[interrupts.timer]\nmax_waiting = 0\n";
        let err = parse(text).unwrap_err().to_string();
        assert!(
            err.contains("c.toml:4") && err.contains("[interrupts.timer]"),
            "{err}"
        );
        let err = parse("[interrupts.timer]\nspool_dir = \"/x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("spool_dir"), "{err}");
    }
}
