//! `--daemon`: fork into the background (the daemonize crate: fork, setsid, fork again, work from
//! `/`) before any runtime or thread exists, and tell the waiting parent how it went over a pipe, so
//! the parent exits 0 only once the daemon accepts connections, or 1 with the daemon's own error.
//! The pidfile is created by the daemon itself with `O_NOFOLLOW` (never written through a symbolic
//! link), locked for the daemon's life and removed when it exits.

use super::DaemonError;
use daemonize::{Daemonize, Outcome};
use nix::fcntl::{Flock, FlockArg, OFlag};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Which side of the fork this is.
pub enum Forked {
    /// The original process: wait for the daemon's word, then exit.
    Parent(ParentWait),
    /// The daemon: report readiness (or failure) through [`Readiness`]; keep the guard until exit.
    Child(Readiness, Option<PidfileGuard>),
}

/// Forks. Paths must already be absolute: the daemon works from `/`.
pub fn daemonize(pidfile: Option<&Path>) -> Result<Forked, DaemonError> {
    if let Some(path) = pidfile {
        check_unlocked(path)?;
    }
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
        .map_err(|e| DaemonError::io("create the readiness pipe", e.into()))?;
    let daemon = Daemonize::new()
        .working_directory("/")
        .umask(0o077)
        .stderr(stderr_target());
    match daemon.execute() {
        Outcome::Parent(Ok(_)) => {
            drop(write);
            Ok(Forked::Parent(ParentWait { read }))
        }
        Outcome::Parent(Err(e)) => Err(DaemonError::Daemonize(e.to_string())),
        Outcome::Child(Ok(_)) => {
            drop(read);
            let readiness = Readiness::new(write);
            match pidfile.map(PidfileGuard::create).transpose() {
                Ok(guard) => Ok(Forked::Child(readiness, guard)),
                Err(e) => {
                    readiness.failed(&e.to_string());
                    Err(e)
                }
            }
        }
        Outcome::Child(Err(e)) => {
            let error = DaemonError::Daemonize(e.to_string());
            Readiness::new(write).failed(&error.to_string());
            Err(error)
        }
    }
}

/// A pidfile held by a running daemon is an error worth naming before forking, and so is a symbolic
/// link (which the daemon will refuse to follow).
fn check_unlocked(path: &Path) -> Result<(), DaemonError> {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(symlinked_pidfile(path));
    }
    let Ok(file) = std::fs::File::open(path) else {
        return Ok(()); // absent (or unreadable: daemonize reports that)
    };
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(_unlocked_on_drop) => Ok(()),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
            let pid = std::fs::read_to_string(path).unwrap_or_default();
            Err(DaemonError::Daemon(format!(
                "pidfile {} is locked: llmkernel is already running as pid {}",
                path.display(),
                pid.trim()
            )))
        }
        Err(_) => Ok(()),
    }
}

/// Keep stderr when it goes to a file (`2>>kernel.log`); otherwise (a terminal, or a pipe the caller
/// waits on for EOF) the daemon lets go of it.
fn stderr_target() -> daemonize::Stdio {
    let is_file = nix::sys::stat::fstat(std::io::stderr())
        .is_ok_and(|st| st.st_mode & nix::libc::S_IFMT == nix::libc::S_IFREG);
    if is_file {
        daemonize::Stdio::keep()
    } else {
        daemonize::Stdio::devnull()
    }
}

/// The parent's end of the readiness pipe.
pub struct ParentWait {
    read: OwnedFd,
}

impl ParentWait {
    /// Blocks until the daemon is ready (Ok) or has failed or died (the error it sent, if any).
    pub fn wait(self) -> Result<(), DaemonError> {
        let mut word = String::new();
        let _ = std::fs::File::from(self.read).read_to_string(&mut word);
        if word == READY {
            return Ok(());
        }
        match word.strip_prefix(FAILED) {
            Some(message) => Err(DaemonError::Daemon(message.trim_end().to_string())),
            None => Err(DaemonError::Daemon(
                "the daemon exited before it was ready".into(),
            )),
        }
    }
}

const READY: &str = "ready\n";
const FAILED: &str = "failed: ";

/// The daemon's end of the readiness pipe: says one thing, once.
pub struct Readiness {
    write: Mutex<Option<OwnedFd>>,
}

impl Readiness {
    fn new(write: OwnedFd) -> Readiness {
        Readiness {
            write: Mutex::new(Some(write)),
        }
    }

    /// The daemon accepts connections: the parent may exit 0.
    pub fn ready(&self) {
        self.say(READY);
    }

    /// The daemon cannot start; the parent prints `message` and exits 1.
    pub fn failed(&self, message: &str) {
        self.say(&format!("{FAILED}{message}\n"));
    }

    fn say(&self, word: &str) {
        let taken = self.write.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(fd) = taken {
            let _ = std::fs::File::from(fd).write_all(word.as_bytes());
        }
    }
}

fn symlinked_pidfile(path: &Path) -> DaemonError {
    DaemonError::Daemon(format!(
        "refusing the pidfile {}: it is a symbolic link (a pidfile is written as whoever runs the \
         daemon, so it must not lead elsewhere)",
        path.display()
    ))
}

/// The daemon's pidfile: created without following a symbolic link (`O_NOFOLLOW`), locked for the
/// daemon's life, and removed when it exits if it still names this process.
pub struct PidfileGuard {
    path: PathBuf,
    /// Held until the guard drops: another `llmkernel --daemon` sees the pidfile locked.
    _lock: Flock<std::fs::File>,
}

impl PidfileGuard {
    /// Creates (or takes over an unlocked) pidfile at `path` and writes this process's pid to it.
    pub fn create(path: &Path) -> Result<PidfileGuard, DaemonError> {
        use std::os::unix::fs::OpenOptionsExt;
        let io = |what: &str, e: std::io::Error| {
            DaemonError::Daemon(format!("cannot {what} the pidfile {}: {e}", path.display()))
        };
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| match e.raw_os_error() {
                Some(nix::libc::ELOOP) => symlinked_pidfile(path),
                _ => io("create", e),
            })?;
        let mut lock = Flock::lock(file, FlockArg::LockExclusiveNonblock)
            .map_err(|(_, errno)| io("lock", errno.into()))?;
        lock.set_len(0).map_err(|e| io("truncate", e))?;
        lock.write_all(format!("{}\n", std::process::id()).as_bytes())
            .map_err(|e| io("write", e))?;
        Ok(PidfileGuard {
            path: path.to_path_buf(),
            _lock: lock,
        })
    }
}

impl Drop for PidfileGuard {
    fn drop(&mut self) {
        let ours = std::fs::read_to_string(&self.path)
            .is_ok_and(|pid| pid.trim() == std::process::id().to_string());
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipe() -> (ParentWait, Readiness) {
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        (ParentWait { read }, Readiness::new(write))
    }

    #[test]
    fn the_parent_learns_readiness_failure_or_silent_death() {
        let (parent, child) = pipe();
        child.ready();
        child.failed("too late: only the first word counts");
        assert!(parent.wait().is_ok());

        let (parent, child) = pipe();
        child.failed("another llmkernel is already serving /s");
        let err = parent.wait().unwrap_err().to_string();
        assert_eq!(err, "another llmkernel is already serving /s");

        let (parent, child) = pipe();
        drop(child);
        let err = parent.wait().unwrap_err().to_string();
        assert!(err.contains("exited before it was ready"), "{err}");
    }

    #[test]
    fn a_locked_pidfile_is_named_with_its_pid() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("k.pid");
        std::fs::write(&path, "4242\n").unwrap();
        let held = Flock::lock(
            std::fs::File::open(&path).unwrap(),
            FlockArg::LockExclusiveNonblock,
        )
        .unwrap();
        let err = check_unlocked(&path).unwrap_err().to_string();
        assert!(err.contains("already running as pid 4242"), "{err}");
        drop(held);
        assert!(check_unlocked(&path).is_ok());
    }

    #[test]
    fn a_pidfile_is_never_written_through_a_symbolic_link() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("precious");
        std::fs::write(&target, "keep\n").unwrap();
        let link = tmp.path().join("k.pid");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = check_unlocked(&link).unwrap_err().to_string();
        assert!(err.contains("k.pid: it is a symbolic link"), "{err}");
        let err = PidfileGuard::create(&link).err().unwrap().to_string();
        assert!(err.contains("k.pid: it is a symbolic link"), "{err}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep\n");
    }

    #[test]
    fn a_pidfile_names_the_daemon_and_goes_with_it() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("k.pid");
        std::fs::write(&path, "999999999 and more stale text\n").unwrap();
        let guard = PidfileGuard::create(&path).unwrap();
        let pid = std::fs::read_to_string(&path).unwrap();
        assert_eq!(pid, format!("{}\n", std::process::id()));
        assert!(
            check_unlocked(&path).is_err(),
            "locked while the daemon runs"
        );
        drop(guard);
        assert!(!path.exists());
    }
}
