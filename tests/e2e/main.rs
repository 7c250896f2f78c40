//! The end-to-end suite: the real `llmkernel` and `llmsh` against a real llama.cpp `llama-server`
//! running SmolLM2-135M-Instruct, both from `scripts/llama-server`'s cache. Every test skips, saying
//! why, when that cache is missing (`scripts/llama-server setup` fills it), so `cargo test` passes on
//! a machine without it. Answers are kept to a few dozen tokens so that the suite takes minutes even
//! when the machine generates only 5 tokens per second.

mod support;

mod door;
mod managed;
mod memory;
mod query;
mod readme;
mod scheduling;
mod smp;
mod syscalls;
