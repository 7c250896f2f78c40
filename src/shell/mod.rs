//! `llmsh`, the job-control shell: its parser, one file per builtin, the job table, the foreground
//! attach loop, the renderers for tables, and for terminals the line editor with its prompt,
//! completer, highlighter, job notices and key handling; model and backend text is made safe for the
//! terminal by [`terminal_safe`]. [`run`] picks the mode: `-c`, a script,
//! piped stdin, or interactive.

pub mod builtins;
pub mod cli;
pub mod client;
pub mod completer;
pub mod editor;
pub mod foreground;
pub mod highlighter;
pub mod jobs;
pub mod notices;
pub mod parser;
pub mod pipeline;
pub mod prompt;
pub mod render;
pub mod session;
pub mod signals;
pub mod terminal_safe;
pub mod tokens;
pub mod top;

use session::Shell;
use std::io::{BufRead, IsTerminal};

/// Runs the shell; returns its exit status.
pub fn run(args: cli::ShellArgs) -> i32 {
    let socket = args
        .socket
        .clone()
        .unwrap_or_else(crate::config::paths::default_socket);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("llmsh: cannot start: {e}");
            return 1;
        }
    };
    if let Some(commands) = &args.command {
        let mut sh = Shell::new(socket, false);
        sh.pipes.stdin_feeds_queries = !std::io::stdin().is_terminal();
        let status = runtime.block_on(run_lines(
            &mut sh,
            commands.lines().map(|l| Ok(l.to_string())),
        ));
        return sh.exit_requested.unwrap_or(status);
    }
    if let Some(path) = &args.script {
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("llmsh: {}: {e}", path.display());
                return 127;
            }
        };
        let mut sh = Shell::new(socket, false);
        sh.pipes.stdin_feeds_queries = !std::io::stdin().is_terminal();
        let status = runtime.block_on(run_lines(&mut sh, std::io::BufReader::new(file).lines()));
        return sh.exit_requested.unwrap_or(status);
    }
    if std::io::stdin().is_terminal() {
        let mut sh = Shell::new(socket, true);
        return editor::run(&mut sh, &runtime, args.vi);
    }
    let mut sh = Shell::new(socket, false);
    let status = runtime.block_on(run_lines(&mut sh, std::io::stdin().lock().lines()));
    sh.exit_requested.unwrap_or(status)
}

/// Runs lines as sh does: a line with an open quote continues on the next.
async fn run_lines(sh: &mut Shell, lines: impl Iterator<Item = std::io::Result<String>>) -> i32 {
    let mut pending = String::new();
    for line in lines {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                eprintln!("llmsh: read error: {e}");
                return 1;
            }
        };
        if !pending.is_empty() {
            pending.push('\n');
        }
        pending.push_str(&line);
        if parser::is_incomplete(&pending) {
            continue;
        }
        sh.execute(&std::mem::take(&mut pending)).await;
        if sh.exit_requested.is_some() {
            return sh.last_status;
        }
    }
    if !pending.is_empty() {
        sh.execute(&pending).await;
    }
    sh.last_status
}
