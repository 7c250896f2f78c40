//! Where the kernel's log goes, chosen once at start-up:
//!
//! - `--log-file PATH` (or `$LLMKERNEL_LOG_FILE`): appended to PATH, created 0600;
//! - under systemd, whose journal holds our stderr (`$JOURNAL_STREAM` names the very stream stderr
//!   is, as systemd.exec(5) says to check): to journald through `tracing-journald`, with each
//!   event's level as its priority; should the journal's socket be unreachable, plain stderr;
//! - `--daemon` with no file or journal to write to (its stderr would be /dev/null):
//!   `llmkernel.log` in the state directory, so a daemon always keeps its log;
//! - else stderr.
//!
//! Colour codes only go to a terminal: never into a file, a pipe or the journal.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, Layer};

/// The file a daemon logs to in its state directory when given none.
pub const DAEMON_LOG_FILE: &str = "llmkernel.log";

/// Where the log goes.
#[derive(Debug, PartialEq, Eq)]
pub enum LogTarget {
    File(PathBuf),
    Journald,
    Stderr,
}

/// Picks the target: `log_file` when given; the journal when stderr is systemd's journal stream
/// (`journal_stream`: `$JOURNAL_STREAM`, `stderr_id`: stderr's device and inode); for a daemon
/// whose stderr is not a file, [`DAEMON_LOG_FILE`] in `state_dir`; else stderr.
pub fn choose(
    log_file: Option<&Path>,
    journal_stream: Option<&str>,
    stderr_id: Option<(u64, u64)>,
    daemon_without_stderr: Option<&Path>,
) -> LogTarget {
    if let Some(path) = log_file {
        return LogTarget::File(path.to_path_buf());
    }
    if stderr_id.is_some() && journal_stream.and_then(parse_journal_stream) == stderr_id {
        return LogTarget::Journald;
    }
    match daemon_without_stderr {
        Some(state_dir) => LogTarget::File(state_dir.join(DAEMON_LOG_FILE)),
        None => LogTarget::Stderr,
    }
}

/// `$JOURNAL_STREAM`'s `DEVICE:INODE`.
fn parse_journal_stream(value: &str) -> Option<(u64, u64)> {
    let (dev, ino) = value.trim().split_once(':')?;
    Some((dev.parse().ok()?, ino.parse().ok()?))
}

/// Stderr's device and inode, and whether it is a regular file.
pub fn stderr_identity() -> Option<((u64, u64), bool)> {
    let st = nix::sys::stat::fstat(std::io::stderr()).ok()?;
    let is_file = st.st_mode & nix::libc::S_IFMT == nix::libc::S_IFREG;
    Some(((st.st_dev, st.st_ino), is_file))
}

/// Opens a log file for appending (created 0600, its directory 0700 if missing).
pub fn open(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
}

/// What the log layer sits on: the level filter over the registry.
type Filtered = tracing_subscriber::layer::Layered<EnvFilter, tracing_subscriber::Registry>;
type Output = Box<dyn Layer<Filtered> + Send + Sync>;

/// Installs the global subscriber: `level` (or `$RUST_LOG`, else `info`) towards `target`; a file
/// target comes opened already (`file`), so that it can fail before anything else starts.
pub fn init(level: Option<&str>, target: &LogTarget, file: Option<std::fs::File>) {
    let filter = match level {
        Some(level) => EnvFilter::new(level),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let fmt = tracing_subscriber::fmt::layer;
    let output: Output = match (target, file) {
        (LogTarget::Journald, _) => match tracing_journald::layer() {
            Ok(journald) => Box::new(journald),
            // systemd keeps our stderr in the journal anyway, and stamps each line itself.
            Err(_) => Box::new(
                fmt()
                    .with_writer(std::io::stderr)
                    .without_time()
                    .with_ansi(false),
            ),
        },
        (_, Some(file)) => Box::new(fmt().with_writer(Arc::new(file)).with_ansi(false)),
        (_, None) => {
            let ansi = std::io::stderr().is_terminal();
            Box::new(fmt().with_writer(std::io::stderr).with_ansi(ansi))
        }
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_is_chosen_only_when_stderr_is_its_stream() {
        let state = Path::new("/state");
        let id = Some((64769, 123));
        assert_eq!(
            choose(None, Some("64769:123"), id, None),
            LogTarget::Journald
        );
        // Inherited from a parent that logs to the journal, but our stderr is something else.
        assert_eq!(choose(None, Some("64769:124"), id, None), LogTarget::Stderr);
        assert_eq!(choose(None, Some("nonsense"), id, None), LogTarget::Stderr);
        assert_eq!(choose(None, None, id, None), LogTarget::Stderr);
        assert_eq!(
            choose(Some(Path::new("/l")), Some("64769:123"), id, Some(state)),
            LogTarget::File("/l".into()),
            "a log file given wins"
        );
        assert_eq!(
            choose(None, None, id, Some(state)),
            LogTarget::File("/state/llmkernel.log".into()),
            "a daemon keeps its log"
        );
    }
}
