//! `llmkernel`: the daemon. Everything it does lives in the library ([`llmkernel::kernel::daemon`]);
//! this file parses the arguments and turns the outcome into an exit status: 0 after a clean shutdown,
//! 1 when it cannot start (bad config, socket in use) or a second termination signal cut the shutdown
//! short, 2 for bad arguments.

use clap::Parser;
use llmkernel::kernel::{cli::KernelArgs, daemon};
use std::process::ExitCode;

fn main() -> ExitCode {
    match daemon::main(KernelArgs::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("llmkernel: {e}");
            ExitCode::FAILURE
        }
    }
}
