//! The kernel's listening socket: created private (directory 0700, socket 0600, with no moment where
//! either is wider), refusing to start over a live kernel and replacing a stale socket left by a crash;
//! or taken from systemd (socket activation, `LISTEN_FDS`). [`SocketGuard`] removes the socket on exit.

use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

/// Why the socket could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("another llmkernel is already serving {0}")]
    InUse(PathBuf),
    #[error("cannot create the socket directory {path}: {source}")]
    Directory { path: PathBuf, source: io::Error },
    #[error("cannot listen on {path}: {source}")]
    Bind { path: PathBuf, source: io::Error },
}

/// Removes the socket file when dropped, unless the socket came from systemd (which owns it).
pub struct SocketGuard {
    path: Option<PathBuf>,
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        if let Some(path) = &self.path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The socket systemd passed us, if this process was socket-activated.
pub fn from_systemd() -> Option<UnixListener> {
    use std::os::fd::FromRawFd;
    let pid: u32 = std::env::var("LISTEN_PID").ok()?.parse().ok()?;
    let fds: u32 = std::env::var("LISTEN_FDS").ok()?.parse().ok()?;
    if pid != std::process::id() || fds < 1 {
        return None;
    }
    // The variables are for us only; children must not inherit them.
    // SAFETY: called at start-up before any other thread exists.
    unsafe {
        std::env::remove_var("LISTEN_PID");
        std::env::remove_var("LISTEN_FDS");
        std::env::remove_var("LISTEN_FDNAMES");
    }
    // SAFETY: systemd's protocol hands over fd 3 (SD_LISTEN_FDS_START) open and listening; we take
    // sole ownership of it here, once.
    let listener = unsafe { UnixListener::from_raw_fd(3) };
    let _ = nix::fcntl::fcntl(
        &listener,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    );
    Some(listener)
}

/// Binds `path` privately. Fails if a kernel already answers there; removes a stale socket.
pub fn bind(path: &Path) -> Result<(UnixListener, SocketGuard), ListenError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| ListenError::Directory {
                path: dir.to_path_buf(),
                source,
            })?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(ListenError::InUse(path.to_path_buf()));
        }
        // Nobody answers: a socket left by a crash.
        let _ = std::fs::remove_file(path);
    }
    // The umask makes bind create the socket 0600 from the start; chmod afterwards would leave a window.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let bound = UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let listener = bound.map_err(|source| ListenError::Bind {
        path: path.to_path_buf(),
        source,
    })?;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    Ok((
        listener,
        SocketGuard {
            path: Some(path.to_path_buf()),
        },
    ))
}

/// A guard that removes nothing (for a socket systemd owns).
pub fn systemd_guard() -> SocketGuard {
    SocketGuard { path: None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    #[test]
    fn socket_and_directory_are_private_and_removed_on_drop() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("sub").join("k.sock");
        let (listener, guard) = bind(&path).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let dir = std::fs::metadata(path.parent().unwrap()).unwrap();
        assert_eq!(dir.permissions().mode() & 0o777, 0o700);
        assert!(
            matches!(bind(&path), Err(ListenError::InUse(_))),
            "a live kernel is not replaced"
        );
        drop(listener);
        drop(guard);
        assert!(!path.exists());
    }

    #[test]
    fn stale_socket_is_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("k.sock");
        drop(UnixListener::bind(&path).unwrap()); // leaves the file, nobody listening
        assert!(path.exists());
        let (_listener, _guard) = bind(&path).unwrap();
    }
}
