//! The `[metrics] listen` endpoint: GET /metrics on a loopback address (the config refuses any
//! other), served with axum until the kernel shuts down. Nothing here authenticates, so the
//! dashboard, which shows prompts and acts, is served by the front door instead ([`super::dashboard`]).

use super::metrics::Metrics;
use crate::kernel::Kernel;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// The content type of the Prometheus text format.
const TEXT_FORMAT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Binds `addr` for the metrics; the caller serves it with [`serve`] once the kernel exists.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    if !addr.ip().is_loopback() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("{addr} is not a loopback address"),
        ));
    }
    TcpListener::bind(addr).await
}

/// Counts the kernel's changes into fresh metrics and serves them on `listener` until shutdown.
pub async fn serve(kernel: Arc<Kernel>, listener: TcpListener) {
    let metrics = Arc::new(Metrics::new());
    let recorder: Arc<dyn crate::kernel::events::Recorder> = metrics.clone();
    kernel.read(|s| kernel.events.set_recorder(s, recorder));
    let app = Router::new()
        .route("/metrics", get(scrape))
        .with_state((Arc::clone(&kernel), metrics));
    let shutdown = kernel.shutdown.clone();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
    if let Err(e) = served {
        tracing::error!("the metrics listener failed: {e}");
    }
}

async fn scrape(State((kernel, metrics)): State<(Arc<Kernel>, Arc<Metrics>)>) -> impl IntoResponse {
    let body = kernel.read(|s| metrics.scrape(s));
    ([(header::CONTENT_TYPE, TEXT_FORMAT)], body)
}
