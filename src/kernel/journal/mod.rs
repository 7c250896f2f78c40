//! The journal: the durable process table. An append-only file of checksummed records (see
//! [`file`]) under the state directory, replayed at start-up and compacted now and then into one
//! image per process.
//!
//! Why a journal and not an embedded database: the kernel's writes are tiny appends at well-defined
//! moments (creation, state changes, output checkpoints at quantum boundaries), and what it needs
//! from storage is exactly "this record is on disk before I acknowledge" plus "a torn tail after a
//! crash is detected and dropped". An append with `fdatasync` and a CRC per record give both with no
//! dependency beyond a checksum, and replaying 10,000 processes takes milliseconds. Compaction writes
//! a new file and renames it over the old one, so a crash mid-compaction leaves either file whole.

pub mod file;
pub mod record;

use crate::proto::Pid;
use record::{DurableState, FORMAT_VERSION, MAGIC, ProcessImage, Record};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

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
    #[error("cannot encode a journal record: {0}")]
    Encode(String),
}

/// What replaying the journal found.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Processes by pid (creation order).
    pub processes: BTreeMap<Pid, ProcessImage>,
    pub next_pid: u64,
    /// Bytes of torn tail that were cut off.
    pub truncated_bytes: u64,
}

pub struct Journal {
    dir: PathBuf,
    file: File,
    /// Length of the file up to the last whole record.
    len: u64,
    appended: u64,
    /// Records after which [`Journal::wants_compaction`] says yes.
    compact_after: u64,
    /// A write failed, so the file may lack a record: the next compaction rewrites it from memory.
    damaged: bool,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Journal {
    /// Opens (or creates) the journal in `dir` and replays it. A torn tail is cut off, never fatal.
    pub fn open(dir: &Path, compact_after: u64) -> Result<(Journal, Recovered), JournalError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_error(dir))?;
        let path = dir.join(JOURNAL_FILE);
        let _ = std::fs::remove_file(dir.join(format!("{JOURNAL_FILE}.new"))); // a compaction cut short
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_error(&path)(e)),
        };
        let (records, intact) = file::read_frames(&bytes);
        let mut recovered = replay(&path, &records)?;
        recovered.truncated_bytes = (bytes.len() - intact) as u64;
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
            file.set_len(intact as u64).map_err(io_error(&path))?;
            file.sync_all().map_err(io_error(&path))?;
        }
        let mut journal = Journal {
            dir: dir.to_path_buf(),
            file,
            len: intact as u64,
            appended: 0,
            compact_after: compact_after.max(1),
            damaged: false,
        };
        if records.is_empty() {
            journal.append(&header(), true)?;
        }
        Ok((journal, recovered))
    }

    /// Appends a record; with `sync`, returns only once it is on disk. A failed write leaves the file
    /// as it was (the partial frame is cut off) and marks the journal for rewriting.
    pub fn append(&mut self, record: &Record, sync: bool) -> Result<(), JournalError> {
        let bytes = file::frame(record).map_err(JournalError::Encode)?;
        let path = self.dir.join(JOURNAL_FILE);
        let written = self
            .file
            .write_all(&bytes)
            .and_then(|()| if sync { self.file.sync_data() } else { Ok(()) });
        if let Err(e) = written {
            self.damaged = true;
            let _ = self.file.set_len(self.len);
            return Err(io_error(&path)(e));
        }
        self.len += bytes.len() as u64;
        self.appended += 1;
        Ok(())
    }

    /// Whether the journal should be rewritten: a write failed, or it has grown by more records than
    /// both the configured threshold and twice the `live` processes a compaction would write. The
    /// second bound keeps compaction amortized O(1) per record however large the table is.
    pub fn wants_compaction(&self, live: usize) -> bool {
        self.damaged || self.appended >= self.compact_after.max(2 * live as u64)
    }

    pub fn is_damaged(&self) -> bool {
        self.damaged
    }

    /// Rewrites the journal as one image per process: a new file, synced, renamed over the old.
    pub fn compact<'a>(
        &mut self,
        images: impl Iterator<Item = &'a ProcessImage>,
        next_pid: u64,
    ) -> Result<(), JournalError> {
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
            let mut put = |out: &mut std::io::BufWriter<File>, r: &Record| -> std::io::Result<()> {
                let bytes = file::frame(r).map_err(std::io::Error::other)?;
                len += bytes.len() as u64;
                out.write_all(&bytes)
            };
            put(&mut out, &header())?;
            put(&mut out, &Record::NextPid(next_pid))?;
            for image in images {
                put(&mut out, &Record::Image(image.clone()))?;
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
        self.file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io_error(&path))?;
        self.len = len;
        self.appended = 0;
        self.damaged = false;
        Ok(())
    }
}

fn header() -> Record {
    Record::Header {
        magic: MAGIC.to_string(),
        format_version: FORMAT_VERSION,
    }
}

/// Rebuilds the process table from records.
fn replay(path: &Path, records: &[Record]) -> Result<Recovered, JournalError> {
    let mut out = Recovered {
        next_pid: 1,
        ..Default::default()
    };
    let Some(first) = records.first() else {
        return Ok(out);
    };
    match first {
        Record::Header {
            magic,
            format_version,
        } if magic == MAGIC => {
            if *format_version > FORMAT_VERSION {
                return Err(JournalError::TooNew {
                    path: path.into(),
                    found: *format_version,
                    supported: FORMAT_VERSION,
                });
            }
            if *format_version < FORMAT_VERSION {
                return Err(JournalError::Unreadable {
                    path: path.into(),
                    found: *format_version,
                    supported: FORMAT_VERSION,
                });
            }
        }
        _ => return Err(JournalError::NotAJournal { path: path.into() }),
    }
    let procs = &mut out.processes;
    for record in &records[1..] {
        match record {
            Record::Header { .. } => {}
            Record::Created(c) => {
                out.next_pid = out.next_pid.max(c.pid.0 + 1);
                procs.insert(c.pid, ProcessImage::new(c.clone()));
            }
            Record::Image(image) => {
                out.next_pid = out.next_pid.max(image.pid().0 + 1);
                procs.insert(image.pid(), image.clone());
            }
            Record::NextPid(n) => out.next_pid = out.next_pid.max(*n),
            Record::State {
                pid,
                state,
                enqueued_unix_ms,
                context_switches,
                cpu_ms,
            } => {
                if let Some(p) = procs.get_mut(pid) {
                    p.state = *state;
                    p.created.enqueued_unix_ms = *enqueued_unix_ms;
                    p.context_switches = *context_switches;
                    p.cpu_ms = *cpu_ms;
                }
            }
            Record::Output(o) => {
                if let Some(p) = procs
                    .get_mut(&o.pid)
                    .filter(|p| p.output.len() as u64 == o.offset)
                {
                    p.output.push_str(&o.text);
                    p.tokens_used = o.tokens_used;
                    p.prompt_tokens = o.prompt_tokens;
                }
            }
            Record::Finished {
                pid,
                status,
                note,
                exited_unix_ms,
            } => {
                if let Some(p) = procs.get_mut(pid) {
                    p.state = DurableState::Zombie;
                    p.exit = Some(status.clone());
                    p.note = note.clone();
                    p.exited_unix_ms = Some(*exited_unix_ms);
                }
            }
            Record::Reaped { pid } => {
                procs.remove(pid);
            }
            Record::Reniced { pid, nice } => {
                if let Some(p) = procs.get_mut(pid) {
                    p.created.nice = *nice;
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
