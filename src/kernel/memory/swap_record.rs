//! What survives a kernel restart of swap: next to each swap file `llmkernel-PID.swap` the kernel
//! writes a record, `llmkernel-PID.record`, once the server has saved the file: the identity of the
//! server that saved it (its address, model file and context per slot) and the tokens it holds.
//!
//! At start the kernel keeps a file only when its record is whole (a crash between the save and the
//! record, or a file from a kernel without records, leaves none: the file is removed), and, once the
//! journal is read, only when its process is still there to resume. A kept file is restored only
//! when the server still has the identity the record names; otherwise it is removed and the
//! process's conversation recomputed, which is always correct.

use crate::proto::Pid;
use std::path::Path;

/// The prefix of every swap file and record this kernel writes.
pub const FILE_PREFIX: &str = "llmkernel-";
pub const FILE_SUFFIX: &str = ".swap";
pub const RECORD_SUFFIX: &str = ".record";

/// The largest record read: a line of identity and a number; anything longer is not a record.
const RECORD_BYTES: u64 = 4096;

/// One swap file's record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The server that saved the file (see `Backend::server_identity`).
    pub server: String,
    /// Tokens of the conversation the file holds.
    pub tokens: u32,
}

/// A swap file an earlier kernel left, with its record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leftover {
    pub pid: Pid,
    pub bytes: u64,
    pub record: Record,
}

/// The file name of `pid`'s record (next to its swap file).
pub fn record_name(pid: Pid) -> String {
    format!("{FILE_PREFIX}{pid}{RECORD_SUFFIX}")
}

impl Record {
    /// The record's text: `server=…` and `tokens=…`, one a line.
    pub fn render(&self) -> String {
        format!(
            "server={}\ntokens={}\n",
            self.server.replace('\n', " "),
            self.tokens
        )
    }

    /// A record's text read back; `None` when it is not a whole record.
    pub fn parse(text: &str) -> Option<Record> {
        let mut server = None;
        let mut tokens = None;
        for line in text.lines() {
            match line.split_once('=') {
                Some(("server", v)) if !v.is_empty() => server = Some(v.to_string()),
                Some(("tokens", v)) => tokens = v.parse().ok(),
                _ => {}
            }
        }
        Some(Record {
            server: server?,
            tokens: tokens?,
        })
    }
}

/// Writes `pid`'s record into `dir` whole or not at all (a temporary file renamed over it).
pub async fn write(dir: &Path, pid: Pid, record: &Record) -> std::io::Result<()> {
    let path = dir.join(record_name(pid));
    let partial = dir.join(format!(".{}.partial", record_name(pid)));
    tokio::fs::write(&partial, record.render()).await?;
    tokio::fs::rename(&partial, &path).await
}

/// The pid a swap file or record of this kernel's names belongs to: `llmkernel-PID.swap`.
fn pid_of(name: &str, suffix: &str) -> Option<Pid> {
    let number = name.strip_prefix(FILE_PREFIX)?.strip_suffix(suffix)?;
    number.parse().ok().map(Pid)
}

fn read_record(path: &Path) -> Option<Record> {
    let file = std::fs::File::open(path).ok()?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(file, RECORD_BYTES), &mut text).ok()?;
    Record::parse(&text)
}

/// The swap files in `dir` that an earlier kernel left with a whole record; every other file of
/// the kernel's there (a swap file without a record, a record without its file) is removed. Files
/// that are not the kernel's are left alone.
pub fn scan(dir: &Path) -> Vec<Leftover> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut swap_files = Vec::new();
    let mut records = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(pid) = pid_of(&name, FILE_SUFFIX) {
            let bytes = entry.metadata().map(|m| m.len()).unwrap_or(0);
            swap_files.push((pid, bytes));
        } else if let Some(pid) = pid_of(&name, RECORD_SUFFIX) {
            records.push(pid);
        }
    }
    let mut kept = Vec::new();
    for (pid, bytes) in swap_files {
        match read_record(&dir.join(record_name(pid))) {
            Some(record) => kept.push(Leftover { pid, bytes, record }),
            None => {
                tracing::info!(%pid, "removing a swap file without its record");
                remove_pair(dir, pid);
            }
        }
    }
    for pid in records {
        if !kept.iter().any(|l| l.pid == pid) {
            let _ = std::fs::remove_file(dir.join(record_name(pid)));
        }
    }
    kept.sort_by_key(|l| l.pid);
    kept
}

/// Removes `pid`'s swap file and record from `dir`, now.
pub fn remove_pair(dir: &Path, pid: Pid) {
    for name in [super::swap::file_name(pid), record_name(pid)] {
        if let Err(e) = std::fs::remove_file(dir.join(&name))
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!("cannot remove swap file {name}: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_and_a_torn_one_is_none() {
        let r = Record {
            server: "http://127.0.0.1:5001 /m/SmolLM2.gguf n_ctx=4096".into(),
            tokens: 1500,
        };
        assert_eq!(Record::parse(&r.render()), Some(r.clone()));
        assert_eq!(Record::parse("server=x\n"), None, "no tokens: torn");
        assert_eq!(Record::parse("tokens=3\n"), None);
        assert_eq!(Record::parse("server=x\ntokens=many\n"), None);
    }

    #[test]
    fn a_scan_keeps_recorded_files_and_removes_the_kernels_other_leftovers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let put = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        let record = Record {
            server: "s".into(),
            tokens: 9,
        };
        put("llmkernel-3.swap", "cache");
        put("llmkernel-3.record", &record.render());
        put("llmkernel-4.swap", "no record");
        put("llmkernel-5.record", &record.render());
        put("llmkernel-6.swap", "torn record");
        put("llmkernel-6.record", "server=s\n");
        put("other.swap", "not ours");
        let kept = scan(dir.path());
        assert_eq!(
            kept,
            [Leftover {
                pid: Pid(3),
                bytes: 5,
                record
            }]
        );
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["llmkernel-3.record", "llmkernel-3.swap", "other.swap"]
        );
    }
}
