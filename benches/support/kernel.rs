//! A kernel for a benchmark: `llmkernel::kernel::start` on a temporary socket, served on a thread of
//! its own with a two-worker runtime (as the daemon would have on this machine), so that the client's
//! and the fake server's work do not run on the kernel's threads.

use llmkernel::config::{KernelConfig, PolicyKind};
use llmkernel::proto::{Request, Response, SchedRequest};
use llmkernel::shell::client::Client;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

/// Worker threads of the kernel's runtime.
const KERNEL_WORKERS: usize = 2;

/// A kernel served on its own runtime; stopped by [`BenchKernel::stop`] or when dropped.
pub struct BenchKernel {
    pub socket: PathBuf,
    shutdown: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl BenchKernel {
    /// Starts a kernel with `config` (its socket and state directory are set here).
    pub fn start(config: KernelConfig) -> BenchKernel {
        BenchKernel::start_on(config, None)
    }

    /// As [`BenchKernel::start`], with every thread of the kernel pinned to `cpu`.
    pub fn start_on(mut config: KernelConfig, cpu: Option<usize>) -> BenchKernel {
        // The state directory on the project's disk (target/bench), never a tmpfs: the journal's
        // syncs are part of what is measured.
        let bench_dir = super::summary::dir();
        std::fs::create_dir_all(&bench_dir).expect("target/bench");
        let dir = tempfile::tempdir_in(&bench_dir).expect("tempdir");
        let socket = dir.path().join("k.sock");
        config.state_dir = dir.path().join("state");
        config.interrupts.spool_dir = dir.path().join("spool");
        let shutdown = CancellationToken::new();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = {
            let socket = socket.clone();
            let shutdown = shutdown.clone();
            std::thread::Builder::new()
                .name("bench-kernel".into())
                .spawn(move || {
                    super::affinity::pin(cpu);
                    let runtime = tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(KERNEL_WORKERS)
                        .thread_name("bench-kernel")
                        .on_thread_start(move || super::affinity::pin(cpu))
                        .enable_all()
                        .build()
                        .expect("kernel runtime");
                    runtime.block_on(async move {
                        let listener = tokio::net::UnixListener::bind(&socket).expect("bind");
                        let started = llmkernel::kernel::start(config, listener, shutdown)
                            .await
                            .expect("kernel starts");
                        tx.send(()).expect("report start");
                        let _ = started.serve().await;
                    });
                })
                .expect("kernel thread")
        };
        rx.recv().expect("kernel started");
        BenchKernel {
            socket,
            shutdown,
            thread: Some(thread),
            _dir: dir,
        }
    }

    /// A kernel for `url` with `cpus` slots, `quantum` and `policy`.
    pub fn for_backend(url: &str, cpus: u32, quantum: u32, policy: PolicyKind) -> BenchKernel {
        BenchKernel::start(KernelConfig {
            backend_url: url.to_string(),
            cpus,
            quantum_tokens: quantum,
            policy,
            max_connections: 4096,
            max_connections_per_uid: 4096,
            ..KernelConfig::default()
        })
    }

    pub async fn connect(&self) -> Client {
        Client::connect(&self.socket).await.expect("connect")
    }

    pub async fn context_switches(&self) -> u64 {
        let mut c = self.connect().await;
        match c.call(Request::Sched(SchedRequest { policy: None })).await {
            Ok(Response::Sched(s)) => s.context_switches,
            other => panic!("sched: {other:?}"),
        }
    }

    /// Shuts the kernel down and waits for it.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.shutdown.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for BenchKernel {
    fn drop(&mut self) {
        self.halt();
    }
}
