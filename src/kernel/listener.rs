//! The kernel's listening socket: created private (directory 0700, socket 0600, with no moment where
//! either is wider), refusing to start over a live kernel and replacing a stale socket left by a crash;
//! or taken from systemd (socket activation, `LISTEN_FDS`). Whatever is at the path and is not a
//! socket is never removed, and the default directory under /tmp (no `$XDG_RUNTIME_DIR`) is used
//! only if it is ours and closed to others, since anyone may create it first. [`SocketGuard`] removes the socket on exit.

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
    #[error(
        "refusing the socket directory {path}: {problem} (owner uid {owner}, mode {mode:04o}); \
         someone else may have created it; remove it, or set $XDG_RUNTIME_DIR"
    )]
    UnsafeDirectory {
        path: PathBuf,
        problem: &'static str,
        owner: u32,
        mode: u32,
    },
    #[error(
        "refusing to replace {path}: it is {what}, not a socket; remove it yourself or choose \
         another --socket"
    )]
    NotASocket { path: PathBuf, what: &'static str },
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

/// The name systemd gives the front door's socket (`FileDescriptorName=` in
/// `llmkernel-http.socket`); a descriptor named after that unit counts too.
pub const HTTP_FD_NAMES: &[&str] = &["llmkernel-http", "llmkernel-http.socket"];

/// The front door's socket, when systemd passed one: taken once by the front door
/// ([`take_http_from_systemd`]).
static HTTP_FROM_SYSTEMD: std::sync::Mutex<Option<UnixListener>> = std::sync::Mutex::new(None);

/// The kernel's socket systemd passed us, if this process was socket-activated (`LISTEN_PID` is
/// ours and `LISTEN_FDS` at least 1). The `sd-notify` crate reads the variables, marks the
/// descriptors close-on-exec and removes the variables, which are for this process only: no child
/// inherits them. The front door's socket (kept for [`take_http_from_systemd`]) is the one named as
/// [`HTTP_FD_NAMES`] (`LISTEN_FDNAMES`), or bound at a path ending in
/// [`SOCKET_SUFFIX`](crate::http::SOCKET_SUFFIX) (one unit listening on both paths names both
/// alike); the first other one is the kernel's.
pub fn from_systemd() -> Option<UnixListener> {
    use std::os::fd::FromRawFd;
    // SAFETY: called at start-up before any other thread exists (removing variables is then sound).
    let (fds, names) = unsafe {
        let names = std::env::var("LISTEN_FDNAMES").unwrap_or_default();
        let fds = sd_notify::listen_fds_and_unset_env();
        std::env::remove_var("LISTEN_FDNAMES");
        (fds, names)
    };
    let fds = fds.ok()?;
    let mut names = names.split(':');
    let mut main = None;
    for fd in fds {
        // SAFETY: systemd's protocol hands over these descriptors (from SD_LISTEN_FDS_START) open
        // and listening; we take sole ownership of each here, once.
        let listener = unsafe { UnixListener::from_raw_fd(fd) };
        let named_http = names.next().is_some_and(|n| HTTP_FD_NAMES.contains(&n));
        let is_http = named_http || is_http_path(&listener);
        if is_http {
            let mut http = HTTP_FROM_SYSTEMD.lock().unwrap_or_else(|p| p.into_inner());
            *http = Some(listener);
        } else if main.is_none() {
            main = Some(listener);
        }
    }
    main
}

/// Whether `listener` is bound at the front door's path (`…-http.sock`).
fn is_http_path(listener: &UnixListener) -> bool {
    listener.local_addr().ok().is_some_and(|a| {
        a.as_pathname()
            .and_then(Path::file_name)
            .is_some_and(|n| n.to_string_lossy().ends_with(crate::http::SOCKET_SUFFIX))
    })
}

/// The front door's socket systemd passed, once (`None` when it passed none, or it was taken).
pub fn take_http_from_systemd() -> Option<UnixListener> {
    let mut http = HTTP_FROM_SYSTEMD.lock().unwrap_or_else(|p| p.into_inner());
    http.take()
}

/// Binds `path` privately. Fails if a kernel already answers there, or if the path holds anything
/// but a socket; removes a stale socket. The default directory under /tmp must be private.
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
        if dir == crate::config::paths::tmp_socket_dir() {
            check_private_dir(dir, nix::unistd::getuid().as_raw())?;
        }
    }
    remove_stale_socket(path)?;
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

/// A directory anyone could have created (in /tmp) is ours only if it is a real directory, owned by
/// us, and writable by nobody else: otherwise its owner could swap our socket for theirs.
fn check_private_dir(dir: &Path, uid: u32) -> Result<(), ListenError> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(dir).map_err(|source| ListenError::Directory {
        path: dir.to_path_buf(),
        source,
    })?;
    let problem = if !meta.file_type().is_dir() {
        Some("it is not a directory")
    } else if meta.uid() != uid {
        Some("it belongs to another user")
    } else if meta.mode() & 0o022 != 0 {
        Some("others may write to it")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(ListenError::UnsafeDirectory {
            path: dir.to_path_buf(),
            problem,
            owner: meta.uid(),
            mode: meta.mode() & 0o7777,
        }),
        None => Ok(()),
    }
}

/// Clears the way for binding `path`: nothing there, or a socket nobody answers on (left by a
/// crash, removed). A live kernel, or a file that is not a socket, is left alone and named.
fn remove_stale_socket(path: &Path) -> Result<(), ListenError> {
    use std::os::unix::fs::FileTypeExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(()); // nothing there
    };
    let kind = meta.file_type();
    if !kind.is_socket() {
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_symlink() {
            "a symbolic link"
        } else if kind.is_file() {
            "a regular file"
        } else {
            "a special file"
        };
        return Err(ListenError::NotASocket {
            path: path.to_path_buf(),
            what,
        });
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(ListenError::InUse(path.to_path_buf()));
    }
    // Nobody answers: a socket left by a crash.
    let _ = std::fs::remove_file(path);
    Ok(())
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
    fn a_file_that_is_not_a_socket_is_never_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let notes = tmp.path().join("notes.txt");
        std::fs::write(&notes, "keep me").unwrap();
        let err = bind(&notes).err().expect("refused").to_string();
        assert!(
            err.contains("notes.txt: it is a regular file, not a socket"),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(&notes).unwrap(), "keep me");
        let link = tmp.path().join("link.sock");
        std::os::unix::fs::symlink(&notes, &link).unwrap();
        let err = bind(&link).err().expect("refused").to_string();
        assert!(err.contains("a symbolic link, not a socket"), "{err}");
        std::fs::create_dir(tmp.path().join("d")).unwrap();
        assert!(matches!(
            bind(&tmp.path().join("d")),
            Err(ListenError::NotASocket { .. })
        ));
    }

    #[test]
    fn a_shared_socket_directory_must_be_ours_and_closed_to_others() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("llmkernel-1000");
        std::fs::DirBuilder::new().mode(0o700).create(&dir).unwrap();
        let me = nix::unistd::getuid().as_raw();
        assert!(check_private_dir(&dir, me).is_ok());
        let err = check_private_dir(&dir, me + 1).unwrap_err().to_string();
        assert!(
            err.contains(&format!(
                "llmkernel-1000: it belongs to another user (owner uid {me}, mode 0700)"
            )),
            "{err}"
        );
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = check_private_dir(&dir, me).unwrap_err().to_string();
        assert!(err.contains("others may write to it"), "{err}");
        assert!(err.contains("mode 0777"), "{err}");
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        let err = check_private_dir(&link, me).unwrap_err().to_string();
        assert!(err.contains("it is not a directory"), "{err}");
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
