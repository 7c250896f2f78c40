//! The integration suite: one binary, one module per area. Every test drives the real `llmkernel` and
//! `llmsh` binaries against a fake OpenAI-compatible server over real HTTP on loopback.

mod support;

mod backend_faults;
mod config;
mod daemon;
mod dashboard_browser;
mod deadlines;
mod docs;
mod durability;
mod durable_core;
mod events;
mod frames;
mod hostile;
mod http;
mod interactive;
mod jobs;
mod listeners;
mod logging;
mod managed;
mod memory;
mod memory_restart;
mod metrics;
mod notices;
mod packaging;
mod peer_rules;
mod peers;
mod pipes;
mod protocol;
mod query;
mod readme;
mod retention;
mod scheduling;
mod server_slots;
mod signals;
mod smp;
mod syscalls;
mod terminal_safe;
mod top;
mod trust;
