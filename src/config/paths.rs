//! Default locations from the user contract, by the XDG base directory rules (the `directories`
//! crate reads them: an unset, empty or relative `$XDG_*` falls back to its default under the home
//! directory, found in `$HOME` or else the password database): the socket under `$XDG_RUNTIME_DIR`
//! (else a private directory in /tmp), the config under `~/.config/llmkernel`, state under
//! `~/.local/state/llmkernel`, and SIGUSR1's message spool beside the socket, named after it
//! (`llmkernel.sock.interrupts`), so two kernels on two sockets never share one.

use directories::ProjectDirs;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The directory name every default ends in.
const APPLICATION: &str = "llmkernel";

/// llmkernel's XDG directories; `None` only when no home directory can be found at all.
fn project() -> Option<ProjectDirs> {
    ProjectDirs::from_path(PathBuf::from(APPLICATION))
}

/// The home directory, for the rare user who has none: `/`, so defaults stay absolute.
fn no_home(rest: &str) -> PathBuf {
    Path::new("/").join(rest).join(APPLICATION)
}

fn uid() -> u32 {
    nix::unistd::getuid().as_raw()
}

/// `$XDG_RUNTIME_DIR/llmkernel.sock`, or `/tmp/llmkernel-$UID/llmkernel.sock`.
pub fn default_socket() -> PathBuf {
    let runtime = directories::BaseDirs::new().and_then(|b| b.runtime_dir().map(Path::to_path_buf));
    runtime
        .unwrap_or_else(tmp_socket_dir)
        .join("llmkernel.sock")
}

/// `/tmp/llmkernel-$UID`, the socket's directory without `$XDG_RUNTIME_DIR`. Anyone may create it
/// first in the shared /tmp, so whoever uses it must check that it is private (the listener does).
pub fn tmp_socket_dir() -> PathBuf {
    PathBuf::from(format!("/tmp/llmkernel-{}", uid()))
}

/// `$XDG_CONFIG_HOME/llmkernel/config.toml`, else `~/.config/llmkernel/config.toml`.
pub fn default_config_file() -> PathBuf {
    project()
        .map_or_else(|| no_home(".config"), |p| p.config_dir().to_path_buf())
        .join("config.toml")
}

/// `$XDG_STATE_HOME/llmkernel`, else `~/.local/state/llmkernel`.
pub fn default_state_dir() -> PathBuf {
    project()
        .and_then(|p| p.state_dir().map(Path::to_path_buf))
        .unwrap_or_else(|| no_home(".local/state"))
}

/// The spool of the kernel serving `socket`: the socket's own path with `.interrupts` added
/// (`$XDG_RUNTIME_DIR/llmkernel.sock.interrupts` by default). Derived from the whole path, so
/// kernels on different sockets have different spools, and found without `$XDG_RUNTIME_DIR` by
/// whoever knows the socket.
pub fn default_spool_dir(socket: &Path) -> PathBuf {
    let mut name = OsString::from(socket.as_os_str());
    name.push(".interrupts");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_on_different_sockets_have_different_spools() {
        let a = default_spool_dir(Path::new("/run/user/1000/llmkernel.sock"));
        let b = default_spool_dir(Path::new("/run/user/1000/other.sock"));
        let c = default_spool_dir(Path::new("/tmp/x/llmkernel.sock"));
        assert_eq!(a, Path::new("/run/user/1000/llmkernel.sock.interrupts"));
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            default_spool_dir(Path::new("/tmp/llmkernel-7/llmkernel.sock")),
            Path::new("/tmp/llmkernel-7/llmkernel.sock.interrupts")
        );
    }

    #[test]
    fn defaults_are_absolute_and_named_for_llmkernel() {
        for path in [default_socket(), default_config_file(), default_state_dir()] {
            assert!(path.is_absolute(), "{}", path.display());
            assert!(
                path.to_string_lossy().contains("llmkernel"),
                "{}",
                path.display()
            );
        }
    }
}
