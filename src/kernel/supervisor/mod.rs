//! The managed backend: when the config names a server command (`[backend] command`), the kernel runs
//! the LLM server itself, the way an init system runs a service.
//!
//! - Start: before the slot table is built, the kernel starts the command and waits until the server
//!   is ready ([`probe`]: `health_url`, else llama-server's `/health`, else `GET {url}/models`) within
//!   `startup_timeout`; the slot count (`cpus`) is then the server's own (`/props`, `/slots`, or `-np`
//!   in the command). A server that exits or never gets ready is a start-up error carrying its last
//!   lines of output. Under systemd, that wait sends `EXTEND_TIMEOUT_USEC=` as it goes, so a slow
//!   model load is not taken for a hung start (and the service put in a restart loop).
//! - Supervision: whenever the server exits, it is started again after a backoff that doubles from
//!   [`FIRST_BACKOFF`] to [`MAX_BACKOFF`] (and starts over once a server has stayed up for
//!   [`STABLE_AFTER`]).
//! - Stop: at the end of shutdown, once no run uses it any more, SIGTERM to its process group, and
//!   SIGKILL after [`STOP_GRACE`].
//!
//! Whether generations can be sent now is published as a [`BackendStatus`] on a watch channel
//! ([`super::Kernel::backend_status`]): `External` for a server run elsewhere, `Up` for a managed
//! one between readiness and its exit, `Restarting` while it is down.

mod probe;
mod reserve;
mod server;

use crate::config::ManagedBackend;
use probe::{Probe, slots_in_command};
pub use probe::{check_server_slots, oversubscribed};
pub use reserve::with_reserved_slots;
use server::{ServerProcess, describe_exit};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The first wait before restarting a server that exited.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest wait between restarts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A server up this long has recovered: the next restart waits [`FIRST_BACKOFF`] again.
pub const STABLE_AFTER: Duration = Duration::from_secs(60);
/// How long a server may take to exit after SIGTERM before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(3);
/// Between two readiness questions while a server starts (a model load takes seconds; a question
/// costs one local HTTP request).
const READY_POLL: Duration = Duration::from_millis(100);

/// Whether the backend can take generations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendStatus {
    /// A server the kernel does not manage: taken to be up (a failed request tells otherwise).
    External,
    /// The managed server (this pid) is ready.
    Up { pid: u32 },
    /// The managed server exited and is being started again (`restarts` so far).
    Restarting { restarts: u32 },
    /// The kernel is shutting down and has stopped (or is stopping) its server.
    Stopped,
}

impl BackendStatus {
    /// Whether generations may be sent now.
    pub fn is_up(&self) -> bool {
        matches!(self, BackendStatus::External | BackendStatus::Up { .. })
    }
}

/// Why the managed server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("cannot start the backend command `{program}`: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("the backend command `{program}` exited ({how}) before it was ready{tail}")]
    Exited {
        program: String,
        how: String,
        tail: String,
    },
    #[error(
        "the backend command `{program}` was not ready at {url} within {timeout:?}; check that \
         [backend] url matches the port it listens on{tail}"
    )]
    NotReady {
        program: String,
        url: String,
        timeout: Duration,
        tail: String,
    },
    #[error("shut down before the backend was ready")]
    Cancelled,
}

/// Runs one managed server over the kernel's life.
pub struct Supervisor {
    config: ManagedBackend,
    probe: Probe,
    status: watch::Sender<BackendStatus>,
    server: ServerProcess,
    /// The slot count learned at start (`None`: the server did not tell).
    pub slots: Option<u32>,
}

impl Supervisor {
    /// Starts the server and waits until it is ready (or `cancel` fires). `url` is the backend's
    /// base URL, where the server will listen.
    pub async fn start(
        config: &ManagedBackend,
        url: &str,
        cancel: &CancellationToken,
    ) -> Result<Supervisor, SupervisorError> {
        let probe = Probe::new(url, config.health_url.clone());
        // Loading a big model can outlast systemd's start timeout: ask for more time meanwhile.
        let launched = launch(config, &probe, cancel);
        let server = crate::kernel::notify::extend_startup_while(launched).await?;
        let slots = match probe.slots().await {
            Some(n) => Some(n),
            None => slots_in_command(&config.command),
        };
        tracing::info!(pid = server.pid, ?slots, "the backend server is ready");
        let (status, _) = watch::channel(BackendStatus::Up { pid: server.pid });
        Ok(Supervisor {
            config: config.clone(),
            probe,
            status,
            server,
            slots,
        })
    }

    /// The status channel (subscribe before [`Supervisor::spawn`]).
    pub fn status(&self) -> watch::Receiver<BackendStatus> {
        self.status.subscribe()
    }

    /// Supervises the server in a task: restarts it whenever it exits, until `shutdown` (no more
    /// restarts); stops it when the returned handle is stopped.
    pub fn spawn(self, shutdown: CancellationToken) -> SupervisorHandle {
        let stop = CancellationToken::new();
        // No restarts once the kernel shuts down, or once it stops the server outright.
        let no_restarts = shutdown.child_token();
        let task = tokio::spawn(self.supervise(no_restarts.clone(), stop.clone()));
        SupervisorHandle {
            stop,
            no_restarts,
            task,
        }
    }

    async fn supervise(mut self, no_restarts: CancellationToken, stop: CancellationToken) {
        let mut backoff = FIRST_BACKOFF;
        let mut restarts = 0;
        loop {
            let up_since = Instant::now();
            let status = tokio::select! {
                _ = stop.cancelled() => break,
                status = self.server.exited() => status,
            };
            tracing::warn!(
                pid = self.server.pid,
                "the backend server exited ({}){}",
                describe_exit(status),
                self.server.tail.describe()
            );
            if up_since.elapsed() >= STABLE_AFTER {
                backoff = FIRST_BACKOFF;
            }
            loop {
                restarts += 1;
                self.status
                    .send_replace(BackendStatus::Restarting { restarts });
                tracing::warn!("restarting the backend server in {backoff:?}");
                tokio::select! {
                    _ = no_restarts.cancelled() => return self.stopped(),
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                match launch(&self.config, &self.probe, &no_restarts).await {
                    Ok(server) => {
                        self.server = server;
                        break;
                    }
                    Err(SupervisorError::Cancelled) => return self.stopped(),
                    Err(e) => tracing::warn!("{e}"),
                }
            }
            tracing::info!(
                pid = self.server.pid,
                restarts,
                "the backend server is back"
            );
            self.status.send_replace(BackendStatus::Up {
                pid: self.server.pid,
            });
        }
        self.status.send_replace(BackendStatus::Stopped);
        self.server.stop(STOP_GRACE).await;
    }

    fn stopped(&self) {
        self.status.send_replace(BackendStatus::Stopped);
    }
}

/// The supervision task of a running kernel.
pub struct SupervisorHandle {
    stop: CancellationToken,
    no_restarts: CancellationToken,
    task: JoinHandle<()>,
}

impl SupervisorHandle {
    /// Stops the server (SIGTERM, then SIGKILL after [`STOP_GRACE`]) and waits for it to exit.
    pub async fn stop(self) {
        self.no_restarts.cancel();
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// Starts the command and waits until the server is ready, it exits, `startup_timeout` passes or
/// `cancel` fires; a server that did not get ready is stopped.
async fn launch(
    config: &ManagedBackend,
    probe: &Probe,
    cancel: &CancellationToken,
) -> Result<ServerProcess, SupervisorError> {
    let program = config.command.first().cloned().unwrap_or_default();
    let mut server =
        ServerProcess::spawn(&config.command).map_err(|source| SupervisorError::Spawn {
            program: program.clone(),
            source,
        })?;
    let deadline = tokio::time::Instant::now() + config.startup_timeout;
    let mut next_probe = tokio::time::Instant::now();
    let failure = loop {
        let probe_later = async {
            tokio::time::sleep_until(next_probe).await;
            probe.ready().await
        };
        tokio::select! {
            _ = cancel.cancelled() => break SupervisorError::Cancelled,
            status = server.exited() => {
                return Err(SupervisorError::Exited {
                    program,
                    how: describe_exit(status),
                    tail: server.tail.describe(),
                });
            }
            _ = tokio::time::sleep_until(deadline) => break SupervisorError::NotReady {
                program,
                url: probe.health_url(),
                timeout: config.startup_timeout,
                tail: server.tail.describe(),
            },
            ready = probe_later => {
                if ready {
                    return Ok(server);
                }
                next_probe = tokio::time::Instant::now() + READY_POLL;
            }
        }
    };
    server.stop(STOP_GRACE).await;
    Err(failure)
}

#[cfg(test)]
mod tests;
