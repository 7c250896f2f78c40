//! The process-level layer of the `llmkernel` binary, kept apart from [`super::run`] so that tests start
//! a kernel in-process without touching signals, forks or systemd: resolving the command line,
//! `--daemon` ([`fork`]), real signals routed to the kernel ([`signals`]), config reload on SIGHUP, the
//! interval timer ([`timer`]), and the systemd notification protocol ([`systemd`], [`super::notify`]).
//!
//! Start-up order: config, fork (with `--daemon`, before any thread or runtime exists), signal
//! handlers, then the socket, so no signal arriving during start-up is lost or kills the process;
//! READY=1 (and the daemon's parent) only once the socket is bound and the state loaded.
//!
//! Shutdown: the first SIGTERM/SIGINT stops accepting and dispatching, takes running processes off
//! their slots with their output kept, tells clients, and removes the socket; it waits at most
//! [`SHUTDOWN_GRACE`] for connections to finish. A second one during that time exits at once.
//!
//! Exit status: 0 after a clean shutdown (for `--daemon`'s parent: once the daemon serves); 1 when the
//! kernel cannot start or a second termination signal cut the shutdown short; 2 for bad arguments.

mod fork;
mod logging;
mod signals;
mod systemd;
mod timer;

use super::cli::KernelArgs;
use super::listener::{self, ListenError};
use super::{Kernel, KernelError, notify};
use crate::config::{ConfigError, KernelConfig};
use fork::{Forked, Readiness};
use signals::{SignalRouter, Targets};
use std::cell::Cell;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How long a graceful shutdown waits for connections (a client that stopped reading) to finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Why the daemon could not run (each message is complete on its own: `llmkernel: MESSAGE`).
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Listen(#[from] ListenError),
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error("cannot {what}: {source}")]
    Io {
        what: &'static str,
        source: io::Error,
    },
    #[error("cannot open the log file {path}: {source}")]
    LogFile { path: PathBuf, source: io::Error },
    #[error("cannot become a daemon: {0}")]
    Daemonize(String),
    /// What the forked daemon reported to its parent.
    #[error("{0}")]
    Daemon(String),
    #[error("second termination signal: exited without finishing the shutdown")]
    Forced,
}

impl DaemonError {
    fn io(what: &'static str, source: io::Error) -> DaemonError {
        DaemonError::Io { what, source }
    }
}

/// Runs `llmkernel` as the command line asks: in the foreground, or forked with `--daemon`.
pub fn main(mut args: KernelArgs) -> Result<(), DaemonError> {
    if let Some(file) = &args.check_config {
        println!("{}", args.check_config(file.as_deref())?);
        return Ok(());
    }
    if args.daemon {
        args.absolutize()
            .map_err(|e| DaemonError::io("resolve paths", e))?;
    }
    let (config, file) = args.resolve()?;
    let log_level = args.log_level.clone().or(file.log_level.clone());
    start_logging(&args, &config, log_level.as_deref())?;
    let mut readiness = None;
    let mut _pidfile = None;
    if args.daemon {
        match fork::daemonize(args.pidfile.as_deref())? {
            Forked::Parent(parent) => return parent.wait(),
            Forked::Child(r, guard) => (readiness, _pidfile) = (Some(r), guard),
        }
    }
    let socket = args.socket_path(&file);
    let mut serving = Serving {
        args,
        socket: None,
        log_level,
        readiness,
    };
    let result = serving.run(config, socket);
    if let (Err(e), Some(r)) = (&result, &serving.readiness) {
        r.failed(&e.to_string());
    }
    result
}

/// What the running daemon keeps from its start-up.
struct Serving {
    args: KernelArgs,
    /// The socket path the kernel bound (compared on reload); `None` when systemd passed the socket.
    socket: Option<PathBuf>,
    log_level: Option<String>,
    readiness: Option<Readiness>,
}

impl Serving {
    /// Installs the signal handlers, then takes the socket (from systemd, or binds `socket`), then
    /// serves until shutdown.
    fn run(&mut self, config: KernelConfig, socket: PathBuf) -> Result<(), DaemonError> {
        let router =
            SignalRouter::install().map_err(|e| DaemonError::io("install signal handlers", e))?;
        let (listener, _socket_guard) = match listener::from_systemd() {
            Some(l) => (l, listener::systemd_guard()),
            None => {
                let bound = listener::bind(&socket)?;
                self.socket = Some(socket);
                bound
            }
        };
        listener
            .set_nonblocking(true)
            .map_err(|e| DaemonError::io("configure the socket", e))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| DaemonError::io("start the runtime", e))?;
        let result = runtime.block_on(self.serve(config, listener, router));
        // Tasks still stuck on a client that stopped reading are dropped, not waited for.
        runtime.shutdown_timeout(Duration::from_millis(100));
        result
    }

    async fn serve(
        &self,
        config: KernelConfig,
        listener: std::os::unix::net::UnixListener,
        router: SignalRouter,
    ) -> Result<(), DaemonError> {
        let shutdown = CancellationToken::new();
        let force = CancellationToken::new();
        let reload = Arc::new(Notify::new());
        let listener = tokio::net::UnixListener::from_std(listener)
            .map_err(|e| DaemonError::io("use the socket", e))?;
        let timer_period = config.interrupts.timer_period;
        let socket = listener
            .local_addr()
            .ok()
            .and_then(|a| a.as_pathname().map(|p| p.display().to_string()))
            .unwrap_or_else(|| "the socket systemd passed".into());
        let started = super::start(config, listener, shutdown.clone()).await?;
        let kernel = started.kernel().clone();
        let _routing = router
            .route(Targets {
                kernel: kernel.clone(),
                shutdown: shutdown.clone(),
                force: force.clone(),
                reload: reload.clone(),
            })
            .map_err(|e| DaemonError::io("start the signal thread", e))?;
        if timer_period.is_some() {
            arm_timer(timer_period);
        }
        let reloader = self.reloader(timer_period);
        let reloader = tokio::spawn(reload_on_sighup(reloader, kernel.clone(), reload));
        let status_line = kernel.status_line();
        notify::ready(&status_line);
        let status = systemd::spawn_status(kernel.clone(), status_line);
        let watchdog = systemd::spawn_watchdog(kernel.clone());
        if let Some(r) = &self.readiness {
            r.ready();
        }
        tracing::info!("{}", serving_line(&kernel, &socket));
        let slots_check = tokio::spawn(super::supervisor::check_server_slots(kernel.clone()));
        let grace = async {
            shutdown.cancelled().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        };
        let result = tokio::select! {
            served = started.serve() => served.map_err(DaemonError::from),
            _ = force.cancelled() => Err(DaemonError::Forced),
            _ = grace => {
                tracing::warn!("connections still open after {SHUTDOWN_GRACE:?}; exiting without them");
                Ok(())
            }
        };
        let _ = timer::arm(None);
        reloader.abort();
        slots_check.abort();
        status.into_iter().chain(watchdog).for_each(|t| t.abort());
        result
    }

    fn reloader(&self, timer_period: Option<Duration>) -> Reloader {
        Reloader {
            args: self.args.clone(),
            socket: self.socket.clone(),
            log_level: self.log_level.clone(),
            timer_period: Cell::new(timer_period),
        }
    }
}

/// The start-up line: where the kernel listens and what it serves with, e.g. `serving on
/// /run/user/1000/llmkernel.sock: backend http://127.0.0.1:5001/v1, model m, 2 slots, ...`.
fn serving_line(kernel: &Kernel, socket: &str) -> String {
    kernel.read(|s| {
        let model = match &s.config.model {
            Some(m) => m.clone(),
            None => "the first the backend lists".into(),
        };
        let slots = match s.config.cpus {
            1 => "1 slot".to_string(),
            n => format!("{n} slots"),
        };
        format!(
            "serving on {socket}: backend {}, model {model}, {slots}, policy {}, quantum {} tokens",
            s.config.backend_url,
            s.config.policy.name(),
            s.config.quantum_tokens
        )
    })
}

fn arm_timer(period: Option<Duration>) {
    match (timer::arm(period), period) {
        (Err(e), _) => tracing::warn!("cannot set the interval timer: {e}"),
        (Ok(()), Some(p)) => tracing::info!("interval timer every {p:?}"),
        (Ok(()), None) => tracing::info!("interval timer off"),
    }
}

/// What a reload compares the new config with.
struct Reloader {
    args: KernelArgs,
    socket: Option<PathBuf>,
    log_level: Option<String>,
    /// The interval timer's period as armed.
    timer_period: Cell<Option<Duration>>,
}

/// Reloads the config each time SIGHUP rings (several SIGHUPs before a reload starts are one).
async fn reload_on_sighup(reloader: Reloader, kernel: Arc<Kernel>, bell: Arc<Notify>) {
    loop {
        tokio::select! {
            _ = kernel.shutdown.cancelled() => return,
            _ = bell.notified() => {}
        }
        notify::reloading();
        reloader.reload(&kernel);
        notify::ready(&kernel.status_line());
    }
}

impl Reloader {
    /// Reads the config again and applies what can change at run time; an invalid file is reported
    /// and the running config kept.
    fn reload(&self, kernel: &Arc<Kernel>) {
        let (config, file) = match self.args.resolve() {
            Ok(resolved) => resolved,
            Err(e) => {
                tracing::error!("config reload failed, keeping the running config: {e}");
                return;
            }
        };
        let period = config.interrupts.timer_period;
        let (mut needs_restart, applied) = match kernel.reconfigure(config) {
            Ok(done) => (done.needs_restart, done.applied),
            Err(e) => {
                tracing::error!("config reload failed, keeping the running config: {e}");
                return;
            }
        };
        for change in applied {
            tracing::info!("reload: {change}");
        }
        if period != self.timer_period.replace(period) {
            arm_timer(period);
        }
        if self
            .socket
            .as_ref()
            .is_some_and(|bound| *bound != self.args.socket_path(&file))
        {
            needs_restart.push("socket");
        }
        if self.args.log_level.is_none() && file.log_level != self.log_level {
            needs_restart.push("log_level");
        }
        tracing::info!("config reloaded");
        if !needs_restart.is_empty() {
            tracing::warn!(
                "changes to {} take effect after a restart",
                needs_restart.join(", ")
            );
        }
    }
}

/// Sends the log where [`logging`] says: a log file is opened here, so that a file that cannot be
/// written stops the start (and a daemon's parent reports it) instead of losing the log.
fn start_logging(
    args: &KernelArgs,
    config: &KernelConfig,
    level: Option<&str>,
) -> Result<(), DaemonError> {
    let stderr = logging::stderr_identity();
    let stderr_is_file = stderr.is_some_and(|(_, is_file)| is_file);
    let journal_stream = std::env::var("JOURNAL_STREAM").ok();
    let target = logging::choose(
        args.log_file.as_deref(),
        journal_stream.as_deref(),
        stderr.map(|(id, _)| id),
        (args.daemon && !stderr_is_file).then_some(config.state_dir.as_path()),
    );
    let file = match &target {
        logging::LogTarget::File(path) => {
            Some(logging::open(path).map_err(|source| DaemonError::LogFile {
                path: path.clone(),
                source,
            })?)
        }
        _ => None,
    };
    logging::init(level, &target, file);
    Ok(())
}
