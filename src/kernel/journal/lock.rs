//! One kernel per state directory: an `flock`ed `lock` file holding the owner's pid, like
//! PostgreSQL's `postmaster.pid`. The lock lives as long as the open file, so a kernel killed with
//! SIGKILL releases it with its last file descriptor, and a stale pid in the file never blocks a
//! start (only a live lock does).

use super::JournalError;
use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The lock file's name in the state directory.
pub const LOCK_FILE: &str = "lock";

/// Holds the state directory for this kernel until dropped.
#[derive(Debug)]
pub struct StateLock {
    _file: Flock<File>,
}

impl StateLock {
    /// Takes the state directory `dir`, or says which process holds it.
    pub fn take(dir: &Path) -> Result<StateLock, JournalError> {
        let path = dir.join(LOCK_FILE);
        let io = |source| JournalError::Io {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
            .open(&path)
            .map_err(io)?;
        let mut file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(locked) => locked,
            Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(JournalError::Locked {
                    dir: dir.to_path_buf(),
                    holder: text.trim().to_string(),
                });
            }
            Err((_, errno)) => return Err(io(std::io::Error::from(errno))),
        };
        let mine = format!("{}\n", std::process::id());
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(mine.as_bytes()))
            .map_err(io)?;
        Ok(StateLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid() {
        let dir = tempfile::tempdir().unwrap();
        let first = StateLock::take(dir.path()).unwrap();
        let err = StateLock::take(dir.path()).unwrap_err().to_string();
        assert!(err.contains(&std::process::id().to_string()), "{err}");
        assert!(err.contains("in use"), "{err}");
        drop(first);
        StateLock::take(dir.path()).expect("free again once the holder is gone");
    }
}
