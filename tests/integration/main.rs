//! The integration suite: one binary, one module per area. Every test drives the real `llmkernel` and
//! `llmsh` binaries against a fake OpenAI-compatible server over real HTTP on loopback.

mod support;

mod daemon;
mod docs;
mod hostile;
mod jobs;
mod managed;
mod packaging;
mod protocol;
mod query;
mod scheduling;
mod signals;
