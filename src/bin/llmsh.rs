//! `llmsh`: the job-control shell for llmkernel. All logic lives in `llmkernel::shell`.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = llmkernel::shell::cli::ShellArgs::parse();
    let status = llmkernel::shell::run(args);
    ExitCode::from(status.clamp(0, 255) as u8)
}
