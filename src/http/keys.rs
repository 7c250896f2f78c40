//! The keys file of the TCP front door: one `KEY USER` a line (`#` starts a comment), mapping each
//! bearer key to the user whose processes its requests create (a name from the user database, or a
//! numeric uid). It holds secrets, so it must be readable by its owner only (mode 0600 or
//! stricter); anything wider is refused at start.

use nix::unistd::User;
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Why a keys file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("cannot read the keys file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the keys file {path} is readable by others (mode {mode:04o}); chmod 600 it")]
    Open { path: PathBuf, mode: u32 },
    #[error("{path}:{line}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// Bearer keys and the uid each stands for.
pub struct Keys {
    uids: HashMap<String, u32>,
}

impl Keys {
    /// Reads and checks a keys file.
    pub fn load(path: &Path) -> Result<Keys, KeysError> {
        let read = |source| KeysError::Read {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(read)?;
        if meta.mode() & 0o077 != 0 {
            return Err(KeysError::Open {
                path: path.to_path_buf(),
                mode: meta.mode() & 0o7777,
            });
        }
        let text = std::fs::read_to_string(path).map_err(read)?;
        Keys::parse(&text, |user| {
            user.parse()
                .ok()
                .or_else(|| User::from_name(user).ok().flatten().map(|u| u.uid.as_raw()))
        })
        .map_err(|(line, message)| KeysError::Invalid {
            path: path.to_path_buf(),
            line,
            message,
        })
    }

    /// Parses `KEY USER` lines, resolving users with `uid_of`; `(line, message)` for a bad one.
    fn parse(text: &str, uid_of: impl Fn(&str) -> Option<u32>) -> Result<Keys, (usize, String)> {
        let mut uids = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut words = line.split_whitespace();
            let (Some(key), Some(user), None) = (words.next(), words.next(), words.next()) else {
                return Err((n + 1, "expected `KEY USER`".into()));
            };
            let uid = uid_of(user).ok_or((n + 1, format!("unknown user `{user}`")))?;
            uids.insert(key.to_string(), uid);
        }
        Ok(Keys { uids })
    }

    /// The uid a presented key stands for. Every key is compared in full, so the time taken does
    /// not tell how much of a guess was right.
    pub fn uid_of(&self, presented: &str) -> Option<u32> {
        let mut found = None;
        for (key, uid) in &self.uids {
            if constant_time_eq(key.as_bytes(), presented.as_bytes()) {
                found = Some(*uid);
            }
        }
        found
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_users_and_bad_lines_are_named() {
        let uid_of = |u: &str| match u {
            "alice" => Some(1000),
            other => other.parse().ok(),
        };
        let keys = Keys::parse("# keys\nsk-a alice\n\nsk-b 1001 # bob\n", uid_of).unwrap();
        assert_eq!(keys.uid_of("sk-a"), Some(1000));
        assert_eq!(keys.uid_of("sk-b"), Some(1001));
        assert_eq!(keys.uid_of("sk-c"), None);
        assert_eq!(keys.uid_of("sk-"), None);
        let err = Keys::parse("sk-a\n", uid_of).err().unwrap();
        assert_eq!(err.0, 1);
        let err = Keys::parse("ok 1\nsk-a mallory\n", uid_of).err().unwrap();
        assert_eq!(err, (2, "unknown user `mallory`".into()));
    }

    #[test]
    fn a_keys_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        std::fs::write(&path, "k 0\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(Keys::load(&path), Err(KeysError::Open { .. })));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(Keys::load(&path).unwrap().uid_of("k"), Some(0));
    }
}
