//! The journal: the durable process table. An append-only file of checksummed records (see
//! [`file`]) under the state directory, replayed at start-up ([`replay`]) and compacted now and then
//! into one image per process. One thread owns the file ([`writer`]): the state hands it records and
//! goes on, the thread writes what has arrived and syncs once per batch (group commit), and whoever
//! needs a record on disk before answering waits for its acknowledgement. One kernel holds a state
//! directory at a time ([`lock`]).
//!
//! Why a journal and not an embedded database: the kernel's writes are tiny appends at well-defined
//! moments (creation, state changes, output checkpoints at quantum boundaries), and what it needs
//! from storage is exactly "this record is on disk before I acknowledge" plus "a torn tail after a
//! crash is detected and dropped". An append with `fdatasync` and a CRC per record give both with no
//! dependency beyond a checksum, and replaying 10,000 processes takes milliseconds. Compaction writes
//! a new file and renames it over the old one, so a crash mid-compaction leaves either file whole.
//! Damage in the middle of the file is not a torn tail: the damaged file is kept beside the state as
//! evidence, and every record after the damage is still read.

pub mod file;
pub mod lock;
pub mod record;
pub mod replay;
pub mod writer;

use record::{FORMAT_VERSION, MAGIC, ProcessImage, Record};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub use crate::proto::Pid;

/// The journal file's name in the state directory.
pub const JOURNAL_FILE: &str = "journal.log";

/// Why the journal cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("state directory {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "state in {path} was written by a newer llmkernel (journal format {found}; this version reads {supported}); \
         upgrade llmkernel or move the state directory away"
    )]
    TooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error(
        "state in {path} has journal format {found}, which this version cannot read (it reads {supported}); \
         move the state directory away to start afresh"
    )]
    Unreadable {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("{path} is not an llmkernel journal")]
    NotAJournal { path: PathBuf },
    #[error(
        "state directory {dir} is in use by another llmkernel (pid {holder}); stop it, or give this one \
         its own --state-dir"
    )]
    Locked { dir: PathBuf, holder: String },
    #[error("cannot encode a journal record: {0}")]
    Encode(String),
    #[error(
        "the journal in {dir} could not be written earlier and has not been rewritten since; \
         nothing is recorded until a rewrite succeeds"
    )]
    Damaged { dir: PathBuf },
}

/// What replaying the journal found.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Processes by pid (creation order).
    pub processes: BTreeMap<Pid, ProcessImage>,
    pub next_pid: u64,
    /// Bytes of torn tail that were cut off.
    pub truncated_bytes: u64,
    /// Where the damaged journal was copied, when damage was found in its middle.
    pub damaged_copy: Option<PathBuf>,
    /// What each quota's subject used in its last window (see [`record::Record::QuotaUsed`]).
    pub quota_used: BTreeMap<crate::config::quotas::QuotaSubject, (u64, u64)>,
}

/// The journal file, owned by the writer thread (or by a test).
pub struct Journal {
    dir: PathBuf,
    /// `None` after a compaction could not reopen the new file: nothing is appended to the old,
    /// replaced one; the next compaction opens the file again.
    file: Option<File>,
    /// Length of the file up to the last whole record.
    len: u64,
    /// A write failed, so the file may lack a record: appends are refused until a compaction
    /// rewrites it from memory.
    damaged: bool,
    _lock: lock::StateLock,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Journal {
    /// Takes the state directory `dir` (creating it), and opens and replays its journal. A torn tail
    /// is cut off; damage in the middle keeps a copy of the file and recovers every record it can.
    pub fn open(dir: &Path) -> Result<(Journal, Recovered), JournalError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_error(dir))?;
        let state_lock = lock::StateLock::take(dir)?;
        let path = dir.join(JOURNAL_FILE);
        let _ = std::fs::remove_file(dir.join(format!("{JOURNAL_FILE}.new"))); // a compaction cut short
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_error(&path)(e)),
        };
        let found = file::scan(&bytes);
        let mut recovered = replay::replay(&path, &found.records)?;
        recovered.truncated_bytes = (bytes.len() - found.intact) as u64;
        if !found.damage.is_empty() {
            recovered.damaged_copy = Some(keep_damaged_copy(dir, &bytes, &found.damage)?);
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_error(&path))?;
        if recovered.truncated_bytes > 0 {
            tracing::warn!(
                bytes = recovered.truncated_bytes,
                "cut a torn tail off the journal"
            );
            file.set_len(found.intact as u64).map_err(io_error(&path))?;
            file.sync_all().map_err(io_error(&path))?;
        }
        let mut journal = Journal {
            dir: dir.to_path_buf(),
            file: Some(file),
            len: found.intact as u64,
            damaged: false,
            _lock: state_lock,
        };
        if found.records.is_empty() {
            journal.append(&header())?;
        }
        Ok((journal, recovered))
    }

    /// Appends one record and syncs it (tests and start-up; the kernel batches through
    /// [`writer`]).
    pub fn append(&mut self, record: &Record) -> Result<(), JournalError> {
        let bytes = file::frame(record).map_err(JournalError::Encode)?;
        self.write_synced(&bytes)
    }

    /// Writes framed records and syncs them: once this returns `Ok`, they are on disk. A failed
    /// write cuts the partial frame off and marks the journal damaged.
    pub fn write_synced(&mut self, bytes: &[u8]) -> Result<(), JournalError> {
        let path = self.dir.join(JOURNAL_FILE);
        let file = match self.file.as_mut() {
            Some(file) if !self.damaged => file,
            _ => {
                return Err(JournalError::Damaged {
                    dir: self.dir.clone(),
                });
            }
        };
        if bytes.is_empty() {
            return Ok(());
        }
        if let Err(e) = file.write_all(bytes).and_then(|()| file.sync_data()) {
            self.damaged = true;
            let _ = file.set_len(self.len);
            return Err(io_error(&path)(e));
        }
        self.len += bytes.len() as u64;
        Ok(())
    }

    pub fn is_damaged(&self) -> bool {
        self.damaged
    }

    /// Bytes of the journal known to be on disk.
    pub fn synced_len(&self) -> u64 {
        self.len
    }

    /// Rewrites the journal as `records` (the images of every process, see
    /// [`record::image_records`]) after a header and the next pid: a new file, synced, renamed over
    /// the old. Success clears the damage of an earlier failed write.
    pub fn compact(&mut self, records: &[Record], next_pid: u64) -> Result<(), JournalError> {
        let path = self.dir.join(JOURNAL_FILE);
        let new_path = self.dir.join(format!("{JOURNAL_FILE}.new"));
        let result = (|| {
            let mut out = std::io::BufWriter::new(
                OpenOptions::new()
                    .create(true)
                    .truncate(true)
                    .write(true)
                    .mode(0o600)
                    .open(&new_path)?,
            );
            let mut len = 0u64;
            let fixed = [header(), Record::NextPid(next_pid)];
            for record in fixed.iter().chain(records) {
                let bytes = file::frame(record).map_err(std::io::Error::other)?;
                len += bytes.len() as u64;
                out.write_all(&bytes)?;
            }
            let file = out.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            std::fs::rename(&new_path, &path)?;
            File::open(&self.dir)?.sync_all()?;
            Ok::<u64, std::io::Error>(len)
        })();
        let len = match result {
            Ok(len) => len,
            Err(e) => {
                let _ = std::fs::remove_file(&new_path);
                self.damaged = true;
                return Err(io_error(&path)(e));
            }
        };
        // The old file is gone: whatever happens next, nothing more is appended to it.
        self.file = None;
        self.damaged = true;
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io_error(&path))?;
        self.file = Some(file);
        self.len = len;
        self.damaged = false;
        Ok(())
    }
}

/// Copies a journal with damage in its middle beside the state, so recovery destroys no evidence.
fn keep_damaged_copy(
    dir: &Path,
    bytes: &[u8],
    damage: &[file::Damage],
) -> Result<PathBuf, JournalError> {
    let copy = dir.join(format!(
        "{JOURNAL_FILE}.damaged-{}",
        crate::kernel::state::unix_ms()
    ));
    std::fs::write(&copy, bytes).map_err(io_error(&copy))?;
    let skipped: usize = damage.iter().map(|d| d.len).sum();
    tracing::error!(
        copy = %copy.display(),
        stretches = damage.len(),
        skipped_bytes = skipped,
        first_at = damage[0].at,
        "the journal is damaged in the middle (not a torn tail): kept a copy, recovered every \
         record before and after the damage; processes whose records were in the damaged stretch \
         may have lost state"
    );
    Ok(copy)
}

fn header() -> Record {
    Record::Header {
        magic: MAGIC.to_string(),
        format_version: FORMAT_VERSION,
    }
}

#[cfg(test)]
pub(crate) mod tests;
