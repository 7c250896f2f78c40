//! Kernel configuration: the resolved settings the kernel runs with ([`KernelConfig`]), the TOML file
//! that feeds them ([`file`]), and the defaults of the user contract (socket and state paths). Precedence
//! is flag > environment > config file > default; the binary applies flags and environment on top of
//! what [`KernelConfig::from_file`] gives.

pub mod backend_url;
pub mod backends;
pub mod file;
pub mod http;
pub mod interrupts;
pub mod paths;
pub mod policy;
pub mod quotas;
pub mod scheduler;
pub mod soft_limit;
pub mod syscalls;

use crate::llm::BackendKind;
use crate::proto::ProcessType;
use std::path::PathBuf;
use std::time::Duration;

pub use file::{ConfigError, ConfigFile};
pub use http::HttpConfig;
pub use interrupts::{InterruptHandler, InterruptsConfig};
pub use policy::PolicyKind;
pub use scheduler::SchedulerSettings;

/// The prototype's default server (KoboldCpp's port).
pub const DEFAULT_BACKEND_URL: &str = "http://127.0.0.1:5001/v1";

/// Per-type scheduling defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TypeSettings {
    pub base_priority: u8,
    pub allowance_tokens: u32,
}

/// How long to wait before trying a failing backend again, and when to give up on a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetrySettings {
    /// The wait after the first failure; it doubles with each further failure.
    pub backoff_initial: Duration,
    /// The longest wait between two tries (before `Retry-After`, which may ask for longer).
    pub backoff_max: Duration,
    /// A process fails once its next try would come later than this after its first failure
    /// without progress.
    pub retry_for: Duration,
    /// Tries after the first failure before a process fails; `None`: as many as `retry_for` allows.
    pub max_retries: Option<u32>,
    /// Tries in all for a request the backend fails on its own while it is up (an HTTP 500 for one
    /// prompt); at least 1.
    pub request_attempts: u32,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            retry_for: Duration::from_secs(600),
            max_retries: None,
            request_attempts: 3,
        }
    }
}
/// How to run a backend server the kernel manages (see `kernel::supervisor`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagedBackend {
    /// The program and its arguments, e.g. `llama-server -m model.gguf --port 5001 -np 4`.
    pub command: Vec<String>,
    /// Where to ask whether it is ready; `None`: llama-server's `/health`, else `GET {url}/models`.
    pub health_url: Option<String>,
    /// How long it may take to become ready (loading a model can take a while).
    pub startup_timeout: Duration,
}

/// The default [`ManagedBackend::startup_timeout`].
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(120);

/// Everything the kernel needs to run, resolved from flags, environment, file and defaults.
#[derive(Clone, Debug)]
pub struct KernelConfig {
    pub backend_url: String,
    pub model: Option<String>,
    pub api_key: Option<String>,
    pub connect_timeout: Duration,
    pub first_token_timeout: Duration,
    pub token_timeout: Duration,
    /// The kind of backend server, for its extras (slot pinning, priorities); `Auto` learns it.
    pub backend_kind: BackendKind,
    /// How the kernel waits out a backend that fails (see `kernel::circuit`).
    pub retry: RetrySettings,
    /// A server the kernel starts and supervises itself (`[backend] command`); `None` for a server
    /// run elsewhere.
    pub managed_backend: Option<ManagedBackend>,
    /// Generation slots to time-share (the backend's parallel slots, e.g. `llama-server -np N`).
    pub cpus: u32,
    /// Tokens per time slice; the scheduler may switch processes at every multiple.
    pub quantum_tokens: u32,
    pub policy: PolicyKind,
    /// Priority points a waiting process gains per second.
    pub aging_points_per_sec: u32,
    /// Slots kept for interactive work, and the rules against switching back and forth.
    pub scheduler: SchedulerSettings,
    /// Indexed like [`ProcessType::ALL`].
    pub types: [TypeSettings; 5],
    /// The largest token allowance a client may ask for.
    pub max_allowance_tokens: u32,
    /// The largest prompt (system + user) a client may submit, in bytes (and the largest interrupt
    /// message); at most [`MAX_PROMPT_BYTES_LIMIT`].
    pub max_prompt_bytes: usize,
    /// The most output one process may produce, in bytes: it ends there with a note, its output
    /// kept, instead of growing without bound.
    pub max_output_bytes: usize,
    /// Waiting processes past which new ones are refused ("run queue is full").
    pub max_queue: usize,
    /// Connections served at once; more are refused with an error.
    pub max_connections: usize,
    /// Connections one uid may hold at once, so one user's stuck clients cannot take every slot.
    pub max_connections_per_uid: usize,
    /// How long a peer may stall in the middle of a request frame it is sending. Its connection is
    /// then closed.
    pub stall_timeout: Duration,
    /// How long a new connection may take to say hello.
    pub handshake_timeout: Duration,
    /// How long a connection may sit idle, or leave a reply untaken, before it is closed.
    pub idle_timeout: Duration,
    /// A group whose members may use the kernel besides its own user and root (a shared kernel).
    pub allowed_group: Option<String>,
    /// How long finished output waits to be collected before it is dropped.
    pub retention: Duration,
    /// Journal records after which the journal is compacted.
    pub journal_compact_records: u64,
    pub state_dir: PathBuf,
    /// The interrupt lines' handlers, spool and interval timer.
    pub interrupts: InterruptsConfig,
    /// The OpenAI-compatible front door (`[http]`).
    pub http: HttpConfig,
    /// Where GET /metrics is served (`[metrics] listen`, loopback only); `None`: not served.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Tokens one slot's context holds, for a backend that does not say (`[backend] context`).
    pub context_tokens: Option<u32>,
    /// Slot caches saved to disk instead of recomputed (`[swap]`).
    pub swap: SwapConfig,
    /// Several backends (`[[backends]]`, or `--backend` given more than once); empty: the one
    /// backend of `backend_url`, `cpus` and `managed_backend`.
    pub backends: Vec<backends::BackendSpec>,
    /// Tokens per window per user and per type (`[quotas]`).
    pub quotas: quotas::QuotasConfig,
    /// When a process is told to wrap up before its allowance (`[soft_limit]`).
    pub soft_limit: soft_limit::SoftLimitConfig,
    /// `[syscalls]`: the limits on LLM processes' system calls.
    pub syscalls: syscalls::SyscallLimits,
}

/// `[swap]`: where llama-server saves slot caches (its `--slot-save-path`), and how much.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwapConfig {
    /// The server's `--slot-save-path`; `None` turns swap off.
    pub dir: Option<PathBuf>,
    /// The most bytes of swap files kept; the least recently used go first.
    pub max_bytes: u64,
    /// Conversations shorter than this are recomputed (cheap) rather than saved.
    pub min_tokens: u32,
}

impl Default for SwapConfig {
    fn default() -> Self {
        SwapConfig {
            dir: None,
            // A 1,500-token conversation of a small model is some MiB; a GiB keeps many of them.
            max_bytes: 1 << 30,
            min_tokens: 256,
        }
    }
}

/// The largest `max_prompt_bytes` a config may set: a prompt and its system text travel in one wire
/// frame and one journal record, both limited to 4 MiB; a megabyte is left for everything else.
pub const MAX_PROMPT_BYTES_LIMIT: usize = 3 * 1024 * 1024;

impl Default for KernelConfig {
    fn default() -> Self {
        KernelConfig {
            backend_url: DEFAULT_BACKEND_URL.to_string(),
            model: None,
            api_key: None,
            connect_timeout: Duration::from_secs(5),
            first_token_timeout: Duration::from_secs(120),
            token_timeout: Duration::from_secs(60),
            backend_kind: BackendKind::Auto,
            retry: RetrySettings::default(),
            managed_backend: None,
            cpus: 1,
            quantum_tokens: 32,
            policy: PolicyKind::Priority,
            aging_points_per_sec: 2,
            scheduler: SchedulerSettings::default(),
            types: ProcessType::ALL.map(|t| TypeSettings {
                base_priority: t.default_base_priority(),
                allowance_tokens: t.default_allowance_tokens(),
            }),
            max_allowance_tokens: 32_768,
            max_prompt_bytes: 1024 * 1024,
            max_output_bytes: 16 * 1024 * 1024,
            max_queue: 100_000,
            max_connections: 512,
            max_connections_per_uid: 64,
            stall_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            allowed_group: None,
            retention: Duration::from_secs(7 * 24 * 3600),
            journal_compact_records: 20_000,
            state_dir: paths::default_state_dir(),
            interrupts: InterruptsConfig::default(),
            http: HttpConfig::default(),
            metrics_listen: None,
            context_tokens: None,
            swap: SwapConfig::default(),
            backends: Vec::new(),
            quotas: quotas::QuotasConfig::default(),
            soft_limit: soft_limit::SoftLimitConfig::default(),
            syscalls: syscalls::SyscallLimits::default(),
        }
    }
}

impl KernelConfig {
    pub fn type_settings(&self, t: ProcessType) -> TypeSettings {
        let index = ProcessType::ALL.iter().position(|x| *x == t).unwrap_or(0);
        self.types[index]
    }

    /// Defaults overlaid with a parsed config file.
    pub fn from_file(file: &ConfigFile) -> KernelConfig {
        let mut c = KernelConfig::default();
        file.apply(&mut c);
        c
    }
}
