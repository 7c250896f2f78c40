//! `llmkernel`: the daemon. Parses arguments, sets up logging, turns signals into kernel events,
//! binds the socket and runs `llmkernel::kernel`. Exit status: 0 after a clean shutdown, 1 when it
//! cannot start (bad config, socket in use), 2 for bad arguments.

use anyhow::Context;
use clap::Parser;
use llmkernel::kernel::{self, cli::KernelArgs, listener, notify};
use llmkernel::proto::InterruptKind;
use signal_hook::consts::{SIGALRM, SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let args = KernelArgs::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("llmkernel: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: KernelArgs) -> anyhow::Result<()> {
    let (config, file) = args.resolve()?;
    init_logging(args.log_level.as_deref().or(file.log_level.as_deref()));
    // Signals are routed before the socket exists, so none arriving during start-up is lost.
    let mut signals =
        signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGALRM])
            .context("cannot install signal handlers")?;
    let (listener, _guard) = match listener::from_systemd() {
        Some(l) => (l, listener::systemd_guard()),
        None => listener::bind(&args.socket_path(&file))?,
    };
    listener
        .set_nonblocking(true)
        .context("cannot configure the socket")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        let listener =
            tokio::net::UnixListener::from_std(listener).context("cannot use the socket")?;
        let started = kernel::start(config, listener, shutdown.clone()).await?;
        let kernel = started.kernel().clone();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<i32>(16);
        // Signals coalesce: the channel holds a few doorbells; a full channel drops the extra rings.
        std::thread::spawn(move || {
            for signal in signals.forever() {
                let _ = tx.try_send(signal);
            }
        });
        let events = {
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                while let Some(signal) = rx.recv().await {
                    match signal {
                        SIGTERM | SIGINT if shutdown.is_cancelled() => {
                            eprintln!("llmkernel: second termination signal, exiting at once");
                            std::process::exit(1);
                        }
                        SIGTERM | SIGINT => {
                            tracing::info!("shutting down");
                            notify::notify("STOPPING=1");
                            shutdown.cancel();
                        }
                        SIGUSR1 => {
                            let _ =
                                kernel.raise_interrupt(InterruptKind::System, None, kernel.owner());
                        }
                        SIGALRM => {
                            let _ =
                                kernel.raise_interrupt(InterruptKind::Timer, None, kernel.owner());
                        }
                        SIGHUP => tracing::info!("SIGHUP: config reload is not supported yet"),
                        _ => {}
                    }
                }
            })
        };
        notify::notify(&format!(
            "READY=1\nSTATUS={}",
            started.kernel().status_line()
        ));
        tracing::info!("serving");
        started.serve().await?;
        events.abort();
        anyhow::Ok(())
    })
}

fn init_logging(level: Option<&str>) {
    let filter = match level {
        Some(level) => tracing_subscriber::EnvFilter::new(level),
        None => tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
