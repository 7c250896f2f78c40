//! Default locations from the user contract: the socket under `$XDG_RUNTIME_DIR` (else a private
//! directory in /tmp), the config under `~/.config/llmkernel`, state under `~/.local/state/llmkernel`,
//! and SIGUSR1's message spool under `$XDG_RUNTIME_DIR/llmkernel/interrupts` (else beside the socket).

use std::path::{Path, PathBuf};

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

fn uid() -> u32 {
    nix::unistd::getuid().as_raw()
}

/// `$XDG_RUNTIME_DIR/llmkernel.sock`, or `/tmp/llmkernel-$UID/llmkernel.sock`.
pub fn default_socket() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("llmkernel.sock"),
        None => tmp_socket_dir().join("llmkernel.sock"),
    }
}

/// `/tmp/llmkernel-$UID`, the socket's directory without `$XDG_RUNTIME_DIR`. Anyone may create it
/// first in the shared /tmp, so whoever uses it must check that it is private (the listener does).
pub fn tmp_socket_dir() -> PathBuf {
    PathBuf::from(format!("/tmp/llmkernel-{}", uid()))
}

/// `$XDG_CONFIG_HOME/llmkernel/config.toml`, else `~/.config/llmkernel/config.toml`.
pub fn default_config_file() -> PathBuf {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".config"));
    base.join("llmkernel").join("config.toml")
}

/// `$XDG_STATE_HOME/llmkernel`, else `~/.local/state/llmkernel`.
pub fn default_state_dir() -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".local").join("state"));
    base.join("llmkernel")
}

/// `$XDG_RUNTIME_DIR/llmkernel/interrupts`, else `interrupts/` beside `socket`.
pub fn default_spool_dir(socket: &Path) -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("llmkernel").join("interrupts"),
        None => socket
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
            .join("interrupts"),
    }
}
