//! The audit log: who created, killed, stopped and reniced what, one line per action, in `audit.log`
//! in the state directory. It is rotated at [`ROTATE_BYTES`]: the full log becomes `audit.log.1`
//! (replacing the one before) and a fresh one starts, so the log cannot fill the disk however long the
//! kernel runs. A log that cannot be written costs a warning, never an action.

use super::{KernelState, unix_ms};
use crate::proto::Pid;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The log's name in the state directory.
pub const AUDIT_LOG_NAME: &str = "audit.log";

/// The size at which the log is rotated: about a hundred thousand actions, so the two generations
/// kept cover weeks of a busy kernel in 20 MiB.
pub const ROTATE_BYTES: u64 = 10 * 1024 * 1024;

/// The open log and how much it holds.
pub struct AuditLog {
    path: PathBuf,
    file: File,
    bytes: u64,
    rotate_bytes: u64,
}

impl AuditLog {
    /// Opens (or creates, private to the user) `audit.log` in `dir` for appending.
    pub fn open(dir: &Path, rotate_bytes: u64) -> io::Result<AuditLog> {
        let path = dir.join(AUDIT_LOG_NAME);
        let file = open_append(&path)?;
        let bytes = file.metadata()?.len();
        Ok(AuditLog {
            path,
            file,
            bytes,
            rotate_bytes,
        })
    }

    /// Appends one line, rotating first when it would take the log past its size.
    pub fn append(&mut self, line: &str) -> io::Result<()> {
        if self.bytes > 0 && self.bytes.saturating_add(line.len() as u64) > self.rotate_bytes {
            self.rotate()?;
        }
        self.file.write_all(line.as_bytes())?;
        self.bytes = self.bytes.saturating_add(line.len() as u64);
        Ok(())
    }

    /// `audit.log` becomes `audit.log.1`, and a fresh `audit.log` is opened.
    fn rotate(&mut self) -> io::Result<()> {
        let old = self.path.with_file_name(format!("{AUDIT_LOG_NAME}.1"));
        std::fs::rename(&self.path, &old)?;
        self.file = open_append(&self.path)?;
        self.bytes = 0;
        Ok(())
    }
}

/// Opens `path` for appending, never through a symbolic link.
fn open_append(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
}

impl KernelState {
    /// Opens the audit log in the state directory.
    pub fn open_audit_log(&mut self) {
        match AuditLog::open(&self.config.state_dir, ROTATE_BYTES) {
            Ok(log) => self.audit_log = Some(log),
            Err(e) => tracing::warn!(
                "cannot open the audit log in {}: {e}",
                self.config.state_dir.display()
            ),
        }
    }

    /// One line in the audit log: who did what to which process.
    pub fn audit(&mut self, uid: u32, action: &str, pid: Pid, detail: &str) {
        tracing::info!(uid, %pid, action, detail, "audit");
        let Some(log) = self.audit_log.as_mut() else {
            return;
        };
        let line = format!(
            "{} uid={uid} {action} pid={pid}{}{detail}\n",
            unix_ms(),
            if detail.is_empty() { "" } else { " " }
        );
        if let Err(e) = log.append(&line) {
            tracing::warn!("cannot write the audit log: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(dir: &Path, name: &str) -> String {
        std::fs::read_to_string(dir.join(name)).unwrap_or_default()
    }

    #[test]
    fn the_log_is_rotated_at_its_size_keeping_one_old_generation() {
        let tmp = tempfile::tempdir().unwrap();
        let mut log = AuditLog::open(tmp.path(), 25).unwrap();
        for line in ["one 1234567\n", "two 1234567\n", "three 12345\n"] {
            log.append(line).unwrap();
        }
        assert_eq!(read(tmp.path(), "audit.log"), "three 12345\n");
        assert_eq!(
            read(tmp.path(), "audit.log.1"),
            "one 1234567\ntwo 1234567\n"
        );
        for line in ["four 123456\n", "five 123456\n"] {
            log.append(line).unwrap();
        }
        assert_eq!(read(tmp.path(), "audit.log"), "five 123456\n");
        assert_eq!(
            read(tmp.path(), "audit.log.1"),
            "three 12345\nfour 123456\n"
        );
    }

    #[test]
    fn a_reopened_log_counts_what_it_already_holds() {
        let tmp = tempfile::tempdir().unwrap();
        AuditLog::open(tmp.path(), 20)
            .unwrap()
            .append("0123456789012345\n")
            .unwrap();
        let mut log = AuditLog::open(tmp.path(), 20).unwrap();
        log.append("next\n").unwrap();
        assert_eq!(read(tmp.path(), "audit.log"), "next\n");
        assert_eq!(read(tmp.path(), "audit.log.1"), "0123456789012345\n");
    }

    #[test]
    fn a_line_over_the_size_still_goes_into_a_fresh_log() {
        let tmp = tempfile::tempdir().unwrap();
        let mut log = AuditLog::open(tmp.path(), 4).unwrap();
        log.append("a long line\n").unwrap();
        assert_eq!(read(tmp.path(), "audit.log"), "a long line\n");
    }

    #[test]
    fn a_symbolic_link_in_place_of_the_log_is_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("elsewhere");
        std::os::unix::fs::symlink(&target, tmp.path().join(AUDIT_LOG_NAME)).unwrap();
        assert!(AuditLog::open(tmp.path(), 100).is_err());
        assert!(!target.exists());
    }
}
