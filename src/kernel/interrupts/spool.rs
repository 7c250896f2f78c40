//! SIGUSR1's mailbox. A signal carries no text, so a message for a SYSTEM interrupt is a file in the
//! spool directory: one file per message, delivered in name order (name them so they sort, e.g.
//! `$(date +%s%N)`), deleted once its handler process exists. Names starting with `.` are skipped, so
//! a writer can write `.NAME` and rename it into place to publish it whole. Delivery is at least once:
//! a crash between starting the handler and deleting the file delivers that message again.
//!
//! A message is opened without following a symbolic link and without blocking on a FIFO, and read
//! only if the opened file is a regular one of at most [`MAX_MESSAGE_BYTES`]: whoever can write to the
//! spool cannot make the kernel read another file, or hang it on a pipe nobody writes.

use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The largest message delivered; a larger file is set aside (renamed `.rejected-NAME`) with a warning.
pub const MAX_MESSAGE_BYTES: u64 = 64 * 1024;

/// Creates the spool directory (private to the user) if it is missing.
pub fn ensure_dir(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Creates the spool directory so users can drop messages in it; a failure is logged, not fatal
/// (SIGUSR1 then delivers the default message).
pub fn prepare(dir: &Path) {
    if let Err(e) = ensure_dir(dir) {
        tracing::warn!("cannot create the interrupt spool {}: {e}", dir.display());
    }
}

/// The messages waiting, in delivery order. A missing directory holds none.
pub fn pending(dir: &Path) -> Vec<PathBuf> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            tracing::warn!("cannot read the interrupt spool {}: {e}", dir.display());
            return Vec::new();
        }
    };
    let mut names: Vec<_> = entries
        .flatten()
        .filter(|e| !e.file_name().as_encoded_bytes().starts_with(b"."))
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name())
        .collect();
    names.sort();
    names.into_iter().map(|n| dir.join(n)).collect()
}

/// What reading one spooled message gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Taken {
    /// Its text, without surrounding whitespace (may be empty: the default message applies).
    Message(String),
    /// Someone removed it first.
    Gone,
    /// It cannot be delivered and was set aside or skipped; the reason was logged.
    Rejected,
}

/// Reads one message.
pub fn read(path: &Path) -> Taken {
    match read_regular(path) {
        Ok(Some(bytes)) => Taken::Message(String::from_utf8_lossy(&bytes).trim().to_string()),
        Ok(None) => {
            let aside = set_aside(path);
            tracing::warn!(
                "spooled message {} is not a regular file of at most {MAX_MESSAGE_BYTES} bytes; \
                 moved to {}",
                path.display(),
                aside.display()
            );
            Taken::Rejected
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Taken::Gone,
        Err(e) => {
            tracing::warn!("cannot read spooled message {}: {e}", path.display());
            Taken::Rejected
        }
    }
}

/// The bytes of `path` if it is a regular file of at most [`MAX_MESSAGE_BYTES`], `None` if it is not
/// (a symbolic link, a FIFO, a device, a directory, a larger file). Opened with `O_NOFOLLOW` (a
/// symbolic link fails with `ELOOP`) and `O_NONBLOCK` (a FIFO opens at once), then checked on the open
/// file itself, so a swap after the directory listing changes nothing.
fn read_regular(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path);
    let file = match opened {
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => return Ok(None),
        opened => opened?,
    };
    let meta = file.metadata()?;
    if !meta.is_file() || meta.len() > MAX_MESSAGE_BYTES {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    file.take(MAX_MESSAGE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_MESSAGE_BYTES {
        return Ok(None); // it grew while we read it
    }
    Ok(Some(bytes))
}

/// Deletes a delivered message.
pub fn remove(path: &Path) {
    if let Err(e) = std::fs::remove_file(path)
        && e.kind() != io::ErrorKind::NotFound
    {
        tracing::warn!(
            "cannot delete delivered message {}: {e} (it will be delivered again)",
            path.display()
        );
    }
}

fn set_aside(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let aside = path.with_file_name(format!(".rejected-{name}"));
    if std::fs::rename(path, &aside).is_err() {
        remove(path);
    }
    aside
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_come_in_name_order_skipping_dotfiles_and_directories() {
        let tmp = tempfile::tempdir().unwrap();
        for name in ["20-fan", "03-disk", "10-power", ".partial"] {
            std::fs::write(tmp.path().join(name), name).unwrap();
        }
        std::fs::create_dir(tmp.path().join("01-dir")).unwrap();
        let names: Vec<_> = pending(tmp.path())
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["03-disk", "10-power", "20-fan"]);
    }

    #[test]
    fn a_missing_spool_holds_no_messages() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(pending(&tmp.path().join("absent")).is_empty());
    }

    #[test]
    fn a_message_is_read_trimmed_and_removed_once_delivered() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("m");
        std::fs::write(&path, "Low disk space\n").unwrap();
        assert_eq!(read(&path), Taken::Message("Low disk space".into()));
        remove(&path);
        assert!(!path.exists());
        assert_eq!(read(&path), Taken::Gone);
    }

    #[test]
    fn an_oversized_message_is_set_aside_not_delivered() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("big");
        std::fs::write(&path, vec![b'x'; MAX_MESSAGE_BYTES as usize + 1]).unwrap();
        assert_eq!(read(&path), Taken::Rejected);
        assert!(!path.exists());
        assert!(tmp.path().join(".rejected-big").exists());
        assert!(pending(tmp.path()).is_empty(), "set aside out of the queue");
    }

    #[test]
    fn a_symbolic_link_is_set_aside_and_its_target_never_read() {
        let tmp = tempfile::tempdir().unwrap();
        let secret = tmp.path().join(".secret");
        std::fs::write(&secret, "the target's contents").unwrap();
        let link = tmp.path().join("m");
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        assert_eq!(read(&link), Taken::Rejected);
        assert!(std::fs::symlink_metadata(&link).is_err(), "set aside");
        assert!(tmp.path().join(".rejected-m").symlink_metadata().is_ok());
    }

    #[test]
    fn a_fifo_is_set_aside_without_blocking() {
        let tmp = tempfile::tempdir().unwrap();
        let fifo = tmp.path().join("pipe");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        // Read on a thread: a blocking open would never return, and the test must fail, not hang.
        let (tx, rx) = std::sync::mpsc::channel();
        let path = fifo.clone();
        std::thread::spawn(move || tx.send(read(&path)));
        let taken = rx.recv_timeout(std::time::Duration::from_secs(20));
        assert_eq!(taken, Ok(Taken::Rejected), "read blocked on a FIFO");
        assert!(!fifo.exists());
    }

    #[test]
    fn the_spool_directory_is_created_private() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a").join("interrupts");
        ensure_dir(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}
