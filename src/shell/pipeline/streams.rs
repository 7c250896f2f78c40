//! Redirections of a builtin (`cat 12 > answer.md`, `ps -l >> log`, `kill 99 2> /dev/null`): llmsh
//! points its own standard output or error at the file while the builtin runs, and puts them back
//! when the [`StreamsGuard`] drops. On a terminal, model output written this way keeps its control
//! characters made visible, as it would be on the screen.

use crate::shell::parser::{Command, RedirectKind};
use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;

/// Standard output and error as they were before a redirection; restored on drop.
pub struct StreamsGuard {
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
}

impl Drop for StreamsGuard {
    fn drop(&mut self) {
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
        if let Some(saved) = self.stdout.take() {
            let _ = nix::unistd::dup2_stdout(saved);
        }
        if let Some(saved) = self.stderr.take() {
            let _ = nix::unistd::dup2_stderr(saved);
        }
    }
}

/// Points standard output and error at the files `command`'s redirections name (a builtin has no
/// input to redirect); the error says why it cannot.
pub fn redirect(command: &Command) -> Result<StreamsGuard, String> {
    if let Some(r) = command
        .redirects
        .iter()
        .find(|r| r.kind == RedirectKind::Input)
    {
        return Err(format!("`< {}`: only a query reads a file", r.path));
    }
    let mut files = super::files::open(std::slice::from_ref(command))?;
    let mut guard = StreamsGuard {
        stdout: None,
        stderr: None,
    };
    if let Some(out) = files.out.take() {
        guard.stdout = Some(swap(out, Stream::Out)?);
    }
    if let Some(errors) = files.errors.pop().flatten() {
        guard.stderr = Some(swap(errors, Stream::Err)?);
    }
    Ok(guard)
}

#[derive(Clone, Copy)]
enum Stream {
    Out,
    Err,
}

/// Points `stream` at `file`; returns what it pointed at before.
fn swap(file: File, stream: Stream) -> Result<OwnedFd, String> {
    let reason = |e: nix::Error| format!("cannot redirect: {e}");
    match stream {
        Stream::Out => {
            let _ = std::io::stdout().flush();
            let saved = nix::unistd::dup(std::io::stdout()).map_err(reason)?;
            nix::unistd::dup2_stdout(&file).map_err(reason)?;
            Ok(saved)
        }
        Stream::Err => {
            let _ = std::io::stderr().flush();
            let saved = nix::unistd::dup(std::io::stderr()).map_err(reason)?;
            nix::unistd::dup2_stderr(&file).map_err(reason)?;
            Ok(saved)
        }
    }
}
