//! `llmsh`'s command-line arguments. They live in the library so that man pages and completions are
//! generated from the same definition the binary parses.

use clap::Parser;
use std::path::PathBuf;

/// llmsh — a job-control shell for llmkernel's LLM processes.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "llmsh",
    version,
    about = "A job-control shell for llmkernel's LLM processes",
    long_about = "llmsh runs LLM prompts as processes of llmkernel and controls them like jobs: query, ps, \
                  kill, nice, renice, jobs, fg, bg, wait, cat, interrupt, sched, free. Interactive on a terminal; \
                  otherwise it runs the commands of -c, SCRIPT or standard input, like sh.",
    after_help = "Exit status: that of the last command (0 done, 1 failed, 2 usage error, 128+N killed by signal N, \
                  127 unknown command)."
)]
pub struct ShellArgs {
    /// The kernel's socket [default: $XDG_RUNTIME_DIR/llmkernel.sock]
    #[arg(long, env = "LLMKERNEL_SOCKET", value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Run COMMANDS and exit
    #[arg(short = 'c', value_name = "COMMANDS", conflicts_with = "script")]
    pub command: Option<String>,
    /// Edit with vi keys instead of emacs keys (interactive only)
    #[arg(long)]
    pub vi: bool,
    /// Read commands from this file
    #[arg(value_name = "SCRIPT")]
    pub script: Option<PathBuf>,
}
