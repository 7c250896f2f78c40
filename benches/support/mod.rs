//! What the bench binaries share: thread placement ([`affinity`]), a cheap fake OpenAI-compatible server ([`fake_openai`]), a kernel
//! served on its own runtime ([`kernel`]), a real llama-server ([`llama`]), percentiles ([`stats`]), and the summary every binary adds
//! its figures to ([`summary`]: `target/bench/summary.json` and a readable table beside it).

pub mod affinity;
pub mod fake_openai;
pub mod kernel;
pub mod llama;
pub mod stats;
pub mod summary;
