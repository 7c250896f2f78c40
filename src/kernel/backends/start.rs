//! Bringing up the backends of `[[backends]]` at start: each managed one's server is started and
//! waited for, then each is asked what the config leaves out ([`super::discover`]), and gets its
//! client. With the single `[backend]` form none of this runs (the kernel starts as it always has).

use super::{Discovered, discover};
use crate::config::backends::BackendSpec;
use crate::config::{DEFAULT_STARTUP_TIMEOUT, KernelConfig, ManagedBackend};
use crate::kernel::supervisor::{BackendStatus, Supervisor, SupervisorError, SupervisorHandle};
use crate::llm::Backend;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The configured backends, ready for the pool.
pub struct Prepared {
    pub clients: Vec<Backend>,
    pub found: Vec<(BackendSpec, Discovered)>,
    /// The managed servers, by backend index, to supervise once the kernel runs.
    pub managed: Vec<(usize, Supervisor)>,
}

/// The client of one backend: the shared settings of `[backend]` with its own URL and kind.
pub fn client(config: &KernelConfig, spec: &BackendSpec) -> Backend {
    let mut settings = crate::kernel::backend_settings(config);
    settings.url = spec.url.clone();
    settings.kind = spec.kind;
    Backend::new(settings)
}

/// Starts the managed servers and learns every backend; `None` for the `[backend]` form.
pub async fn prepare(
    config: &KernelConfig,
    shutdown: &CancellationToken,
) -> Result<Option<Prepared>, SupervisorError> {
    if config.backends.is_empty() {
        return Ok(None);
    }
    let mut prepared = Prepared {
        clients: Vec::new(),
        found: Vec::new(),
        managed: Vec::new(),
    };
    for (index, spec) in config.backends.iter().enumerate() {
        let mut known_slots = None;
        if let Some(command) = &spec.command {
            let managed = ManagedBackend {
                command: command.clone(),
                health_url: None,
                startup_timeout: DEFAULT_STARTUP_TIMEOUT,
            };
            let server = Supervisor::start(&managed, &spec.url, shutdown).await?;
            known_slots = server.slots;
            prepared.managed.push((index, server));
        }
        let found = discover(spec, known_slots).await;
        prepared.clients.push(client(config, spec));
        prepared.found.push((spec.clone(), found));
    }
    Ok(Some(prepared))
}

/// Supervises the managed servers of the pool, following each one's up and down into the pool.
pub fn supervise(
    kernel: &Arc<crate::kernel::Kernel>,
    managed: Vec<(usize, Supervisor)>,
) -> Vec<SupervisorHandle> {
    managed
        .into_iter()
        .map(|(index, server)| {
            let status = server.status();
            let follow = follow_status(Arc::clone(kernel), index, status);
            kernel.tracker.spawn(follow);
            server.spawn(kernel.shutdown.clone())
        })
        .collect()
}

async fn follow_status(
    kernel: Arc<crate::kernel::Kernel>,
    index: usize,
    status: tokio::sync::watch::Receiver<BackendStatus>,
) {
    crate::kernel::follow_server_status(
        &kernel,
        status,
        |s| s.pool.mark_up(index),
        |s| {
            s.pool.mark_down(index, "its server is restarting".into());
        },
    )
    .await;
}
