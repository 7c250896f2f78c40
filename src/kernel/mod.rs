//! The kernel: the process table and its transitions ([`state`]), the scheduler and its policies
//! ([`scheduler`]), the dispatcher that runs processes on the backends' slots ([`dispatcher`]) while
//! the backend circuit says it is answering ([`circuit`]), the pool of several backends
//! ([`backends`]), the
//! socket server ([`server`]), one handler per verb ([`verbs`]), the interrupt lines ([`interrupts`]),
//! run-time reconfiguration ([`reload`]), the managed backend server ([`supervisor`]), the durable
//! process table ([`journal`]: one writer thread syncs records in batches, never the state's lock
//! nor a runtime thread), and the process-level layer of the `llmkernel` binary (signals,
//! `--daemon`, systemd: [`daemon`]).
//!
//! Start one with [`run`] (or [`start`] then [`Started::serve`], to learn when it is ready): tests and
//! the `llmkernel` binary differ only in the listener and shutdown token they pass.

pub mod admission;
pub mod backends;
pub mod circuit;
pub mod cli;
pub mod daemon;
pub mod dispatcher;
pub mod events;
pub mod interrupts;
pub mod journal;
pub mod listener;
pub mod memory;
pub mod notify;
pub mod reload;
pub mod retention;
pub mod scheduler;
pub mod server;
pub mod state;
/// A process and what it asked for ([`state::process`]): its fields are private to the state.
pub use state::process;
pub mod supervisor;
pub mod syscalls;
pub mod verbs;
pub mod waiting;

use crate::config::KernelConfig;
use crate::llm::{Backend, BackendSettings};
use scheduler::Scheduler;
pub use scheduler::make_policy;
use state::KernelState;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use tokio::net::UnixListener;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Why the kernel could not start.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("cpus must be at least 1")]
    NoCpus,
    #[error(transparent)]
    Journal(#[from] journal::JournalError),
    #[error(transparent)]
    Backend(#[from] supervisor::SupervisorError),
    #[error(transparent)]
    Http(#[from] crate::http::door::DoorError),
    #[error("cannot serve metrics on {addr}: {source}")]
    Metrics {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// The running kernel, shared by connection handlers and run tasks.
pub struct Kernel {
    /// Guards the whole in-memory state. Held only for in-memory updates, never across an `.await`
    /// and never for disk I/O (journal records are queued to the journal's writer thread, which
    /// syncs them; see [`journal::writer`]), so a single lock is both simple and uncontended at the
    /// rates tokens arrive.
    state: Mutex<KernelState>,
    /// The client of each backend of the pool, by index (see [`backends`]); a reload swaps or adds
    /// them, runs in flight keep the one they started with.
    clients: RwLock<Vec<Arc<Backend>>>,
    /// Every run and connection task, so shutdown can wait for them.
    pub(crate) tracker: TaskTracker,
    pub(crate) shutdown: CancellationToken,
    /// The uid the kernel runs as: it may lower nice below 0, like root.
    pub(crate) owner_uid: u32,
    pub(crate) admission: admission::Admission,
    /// Open connections, capped in all and per uid (`max_connections`, `max_connections_per_uid`).
    pub(crate) connections: admission::ConnectionSlots,
    /// Memory for large frames being read, shared by all connections (see [`server`]).
    pub(crate) frame_budget: crate::proto::FrameBudget,
    /// The interrupt lines: doorbells, counters, waiting handlers.
    pub interrupts: interrupts::Interrupts,
    /// Woken after every state update, for tasks that follow the table (interrupt backlog, STATUS=).
    pub(crate) changed: Notify,
    /// What subscribers and metrics hear of every update ([`events`]).
    pub(crate) events: events::EventBus,
    /// Whether the backend can take generations (a managed server may be restarting).
    backend_status: watch::Receiver<supervisor::BackendStatus>,
}

impl Kernel {
    fn lock(&self) -> MutexGuard<'_, KernelState> {
        // A panic while holding the lock would be a kernel bug; keep serving the state as it is.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies `f` to the state, then starts whatever the scheduler now puts on a free slot.
    pub(crate) fn update<R>(self: &Arc<Self>, f: impl FnOnce(&mut KernelState) -> R) -> R {
        let mut state = self.lock();
        let result = f(&mut state);
        let deciding = std::time::Instant::now();
        let launches = state.dispatch();
        let decided = (!launches.is_empty()).then(|| deciding.elapsed());
        let started: Vec<_> = launches.iter().map(|l| l.pid).collect();
        for launch in launches {
            self.tracker
                .spawn(dispatcher::run_generation(Arc::clone(self), launch));
        }
        state.record_started(&started);
        for index in std::mem::take(&mut state.pool.probes_due) {
            let probe = backends::watch_return(Arc::clone(self), index);
            self.tracker.spawn(probe);
        }
        state.after_update();
        self.events.after_update(&state, decided);
        if let Some(delay) = state.circuit_timer() {
            self.wake_after(delay);
        }
        if let Some(delay) = state.deadline_timer() {
            self.wake_after(delay);
        }
        if let Some(delay) = state.quota_timer() {
            self.wake_after(delay);
        }
        self.changed.notify_waiters();
        result
    }

    /// Dispatches again after `delay` (when the backend circuit's backoff is over), unless the
    /// kernel shuts down first.
    fn wake_after(self: &Arc<Self>, delay: std::time::Duration) {
        let kernel = Arc::clone(self);
        self.tracker.spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(delay) => kernel.update(|_| ()),
                () = kernel.shutdown.cancelled() => {}
            }
        });
    }

    /// The first backend's client: the one backend of the `[backend]` form.
    pub(crate) fn backend(&self) -> Arc<Backend> {
        let clients = self.clients.read().unwrap_or_else(|p| p.into_inner());
        Arc::clone(&clients[0])
    }

    /// The client of backend `index` of the pool.
    pub(crate) fn client(&self, index: usize) -> Option<Arc<Backend>> {
        let clients = self.clients.read().unwrap_or_else(|p| p.into_inner());
        clients.get(index).cloned()
    }

    /// Replaces (`Some(index)`) or adds a backend's client.
    pub(crate) fn set_client(&self, index: Option<usize>, client: Backend) {
        let mut clients = self.clients.write().unwrap_or_else(|p| p.into_inner());
        match index.and_then(|i| clients.get_mut(i)) {
            Some(slot) => *slot = Arc::new(client),
            None => clients.push(Arc::new(client)),
        }
    }

    /// Waits for the next change to the state. Create it before looking at the state, and
    /// `enable` it, so that a change in between is not missed.
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }

    /// Whether the backend can take generations, as it changes: always `External` (up) for a server
    /// run elsewhere; for a managed one, `Up` or `Restarting` (wait with `wait_for(|s| s.is_up())`).
    pub fn backend_status(&self) -> watch::Receiver<supervisor::BackendStatus> {
        self.backend_status.clone()
    }

    /// Reads the state without scheduling.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&KernelState) -> R) -> R {
        f(&self.lock())
    }
}

/// A kernel whose state is loaded and which is ready to serve its listener.
pub struct Started {
    kernel: Arc<Kernel>,
    listener: UnixListener,
    /// The managed backend server's supervisor, stopped once no run uses the server any more.
    supervisor: Option<supervisor::SupervisorHandle>,
    /// The OpenAI-compatible front door's listeners ([`crate::http`]).
    http: crate::http::door::Listeners,
    /// The managed servers of `[[backends]]`, stopped like `supervisor`.
    pool_supervisors: Vec<supervisor::SupervisorHandle>,
}

/// Prepares a kernel: validates the config and builds the state. Once this returns, the kernel is
/// ready in the systemd sense (the listener is bound, the state loaded, and a managed backend server
/// ready, its slot count taken as `cpus`).
pub async fn start(
    mut config: KernelConfig,
    listener: UnixListener,
    shutdown: CancellationToken,
) -> Result<Started, KernelError> {
    if config.cpus == 0 {
        return Err(KernelError::NoCpus);
    }
    let policy = make_policy(config.policy, &config);
    // The durable table first: a state directory that cannot be used stops us before a server starts.
    // Opening replays and may sync (a torn tail cut off): off the runtime's threads.
    let state_dir = config.state_dir.clone();
    let (journal, recovered) =
        tokio::task::spawn_blocking(move || journal::Journal::open(&state_dir))
            .await
            .map_err(|e| KernelError::Journal(journal::JournalError::Encode(e.to_string())))??;
    // The front door beside the kernel's socket, and its TCP address if any: a bad address or keys
    // file stops us here, before a server starts (after the state directory, whose
    // lock names a kernel already running there).
    let kernel_socket = listener
        .local_addr()
        .ok()
        .and_then(|a| a.as_pathname().map(std::path::Path::to_path_buf));
    let http = crate::http::door::bind(&config.http, kernel_socket.as_deref()).await?;
    let metrics = match config.metrics_listen {
        Some(addr) => Some(
            crate::http::metrics_listener::bind(addr)
                .await
                .map_err(|source| KernelError::Metrics { addr, source })?,
        ),
        None => None,
    };
    let managed = match &config.managed_backend {
        Some(m) => {
            // The slots kept for interactive work come on top of the command's (see `reserve`).
            let m = supervisor::with_reserved_slots(m, config.scheduler.reserved_slots);
            Some(supervisor::Supervisor::start(&m, &config.backend_url, &shutdown).await?)
        }
        None => None,
    };
    if let Some(slots) = managed.as_ref().and_then(|m| m.slots) {
        config.cpus = slots;
    }
    let several = backends::start::prepare(&config, &shutdown).await?;
    if let Some(first) = config.backends.first() {
        config.backend_url = first.url.clone();
    }
    let backend_status = match &managed {
        Some(m) => m.status(),
        None => watch::channel(supervisor::BackendStatus::External).1,
    };
    let backend = Backend::new(backend_settings(&config));
    interrupts::spool::prepare(&config.interrupts.spool_dir);
    let owner_uid = nix::unistd::getuid().as_raw();
    let admission = admission::Admission::new(owner_uid, config.allowed_group.as_deref());
    let mut state = KernelState::new(config, Scheduler::new(policy));
    let (clients, several_managed) = match several {
        Some(prepared) => {
            state.set_backends(&prepared.found);
            let clients = prepared.clients.into_iter().map(Arc::new).collect();
            (clients, prepared.managed)
        }
        None => (vec![Arc::new(backend)], Vec::new()),
    };
    let restored = state.restore(journal, recovered)?;
    state.keep_resumable_swap();
    state.open_audit_log();
    if restored != state::Restored::default() {
        tracing::info!(?restored, "process table restored from the journal");
    }
    let kernel = Arc::new(Kernel {
        state: Mutex::new(state),
        clients: RwLock::new(clients),
        tracker: TaskTracker::new(),
        shutdown,
        owner_uid,
        admission,
        connections: admission::ConnectionSlots::default(),
        frame_budget: crate::proto::FrameBudget::new(server::FRAME_BUDGET_BYTES),
        interrupts: interrupts::Interrupts::default(),
        changed: Notify::new(),
        events: events::EventBus::default(),
        backend_status,
    });
    kernel.tracker.spawn(interrupts::serve(Arc::clone(&kernel)));
    kernel
        .tracker
        .spawn(retention::reap_expired(Arc::clone(&kernel)));
    kernel
        .tracker
        .spawn(follow_backend_status(Arc::clone(&kernel)));
    kernel
        .tracker
        .spawn(waiting::report_waits(Arc::clone(&kernel)));
    kernel.tracker.spawn(events::sample(Arc::clone(&kernel)));
    if let Some(listener) = metrics {
        let serve = crate::http::metrics_listener::serve(Arc::clone(&kernel), listener);
        kernel.tracker.spawn(serve);
    }
    // Restored processes take the free slots at once.
    kernel.update(|_| ());
    let supervisor = managed.map(|m| m.spawn(kernel.shutdown.clone()));
    let pool_supervisors = backends::start::supervise(&kernel, several_managed);
    Ok(Started {
        kernel,
        listener,
        supervisor,
        http,
        pool_supervisors,
    })
}

/// Feeds the managed server's up/down into the backend circuit: while the supervisor restarts it,
/// nothing is dispatched (processes wait in the queue); once it is up again, dispatching resumes at
/// once instead of after the circuit's own backoff.
async fn follow_backend_status(kernel: Arc<Kernel>) {
    let status = kernel.backend_status();
    follow_server_status(
        &kernel,
        status,
        |s| s.circuit.report_up(),
        |s| {
            let (retry, now_ms) = (s.config.retry, s.now_ms());
            s.circuit.report_down(&retry, now_ms);
        },
    )
    .await;
}

/// Applies a managed server's ups (`up`) and restarts (`down`) to the state until the kernel shuts
/// down or its supervisor goes away.
pub(crate) async fn follow_server_status(
    kernel: &Arc<Kernel>,
    mut status: tokio::sync::watch::Receiver<supervisor::BackendStatus>,
    up: impl Fn(&mut KernelState),
    down: impl Fn(&mut KernelState),
) {
    loop {
        tokio::select! {
            _ = kernel.shutdown.cancelled() => return,
            changed = status.changed() => if changed.is_err() { return },
        }
        let now = status.borrow_and_update().clone();
        match now {
            supervisor::BackendStatus::Up { .. } => kernel.update(&up),
            supervisor::BackendStatus::Restarting { .. } => kernel.update(&down),
            supervisor::BackendStatus::External | supervisor::BackendStatus::Stopped => {}
        }
    }
}

/// How to reach the backend, from the config.
pub fn backend_settings(config: &KernelConfig) -> BackendSettings {
    BackendSettings {
        url: config.backend_url.clone(),
        model: config.model.clone(),
        api_key: config.api_key.clone(),
        connect_timeout: config.connect_timeout,
        first_token_timeout: config.first_token_timeout,
        token_timeout: config.token_timeout,
        kind: config.backend_kind,
    }
}

impl Started {
    /// Serves until the shutdown token is cancelled, then shuts down gracefully: stops dispatching,
    /// takes running processes off their slots with their output kept, and waits for every task.
    pub async fn serve(self) -> Result<(), KernelError> {
        let Started {
            kernel,
            listener,
            supervisor,
            http,
            pool_supervisors,
        } = self;
        kernel
            .tracker
            .spawn(crate::http::door::serve(Arc::clone(&kernel), http));
        server::serve(&kernel, listener).await;
        kernel.update(|s| s.cancel_all_runs());
        kernel.tracker.close();
        kernel.tracker.wait().await;
        if let Some(supervisor) = supervisor {
            supervisor.stop().await;
        }
        for supervisor in pool_supervisors {
            supervisor.stop().await;
        }
        // Everything, output included, into one fresh journal: a planned restart loses nothing.
        // Closing the journal waits for the writer to finish it, and releases the state directory.
        let journal = kernel.update(|s| {
            s.compact();
            s.take_journal()
        });
        if let Some(journal) = journal {
            let _ = tokio::task::spawn_blocking(move || journal.close()).await;
        }
        Ok(())
    }

    /// Processes in the table (for status lines).
    pub fn kernel(&self) -> &Arc<Kernel> {
        &self.kernel
    }
}

impl Kernel {
    /// The uid the kernel runs as (interrupts raised by signals belong to it).
    pub fn owner(&self) -> u32 {
        self.owner_uid
    }

    /// A one-line summary for systemd's STATUS= and logs.
    pub fn status_line(&self) -> String {
        self.read(|s| {
            let mut line = format!(
                "{} processes, {} running, {} waiting",
                s.live(),
                s.running(),
                s.waiting()
            );
            if let Some(note) = s.backends_down_note() {
                line.push_str(&note);
            }
            if s.circuit.failures() > 0 {
                line.push_str(&format!(
                    ", backend failing ({} in a row)",
                    s.circuit.failures()
                ));
            }
            line
        })
    }
}

/// Starts a kernel on `listener` and serves until `shutdown` is cancelled.
pub async fn run(
    config: KernelConfig,
    listener: UnixListener,
    shutdown: CancellationToken,
) -> Result<(), KernelError> {
    start(config, listener, shutdown).await?.serve().await
}
