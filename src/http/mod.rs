//! HTTP endpoints of the kernel: the Prometheus metrics ([`metrics`]) and a read-only dashboard
//! ([`dashboard`]) on their own loopback listener ([`metrics_listener`], `[metrics] listen`).

pub mod dashboard;
pub mod metrics;
pub mod metrics_listener;
