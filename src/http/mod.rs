//! HTTP endpoints of the kernel: the Prometheus metrics ([`metrics`]) on their own loopback listener
//! ([`metrics_listener`], `[metrics] listen`).

pub mod metrics;
pub mod metrics_listener;
