//! `llmkernel`'s command-line arguments, in the library so man pages and completions come from the
//! same definition the binary parses. Each flag overrides its environment variable, which overrides
//! the config file, which overrides the default.

use crate::config::{ConfigError, ConfigFile, KernelConfig, PolicyKind, paths};
use clap::Parser;
use std::path::PathBuf;

/// llmkernel — an operating system whose processes are LLM generations.
#[derive(Parser, Debug, Clone, Default)]
#[command(
    name = "llmkernel",
    version,
    about = "An operating system whose processes are LLM generations",
    long_about = "llmkernel owns the generation slots of an OpenAI-compatible LLM server and time-shares them \
                  between LLM processes with a preemptive scheduler. Clients (llmsh) talk to it over a Unix socket. \
                  Signals: SIGUSR1 raises a SYSTEM interrupt, SIGALRM a TIMER interrupt, SIGHUP reloads the config, \
                  SIGTERM/SIGINT shut down gracefully."
)]
pub struct KernelArgs {
    /// Config file [default: ~/.config/llmkernel/config.toml]
    #[arg(long, env = "LLMKERNEL_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Unix socket to listen on [default: $XDG_RUNTIME_DIR/llmkernel.sock]
    #[arg(long, env = "LLMKERNEL_SOCKET", value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// OpenAI-compatible base URL [default: http://127.0.0.1:5001/v1]; give it more than once for
    /// several backends scheduled as one machine
    #[arg(long, env = "LLMKERNEL_BACKEND", value_name = "URL", value_parser = crate::config::backend_url::parse_backend_url)]
    pub backend: Vec<String>,
    /// Model name to request [default: the first the backend lists]
    #[arg(long, env = "LLMKERNEL_MODEL", value_name = "NAME")]
    pub model: Option<String>,
    /// Generation slots to time-share (match the server's parallel slots) [default: 1]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub cpus: Option<u32>,
    /// Tokens per time slice [default: 32]
    #[arg(long, value_name = "TOKENS", value_parser = clap::value_parser!(u32).range(1..))]
    pub quantum: Option<u32>,
    /// Scheduling policy [default: priority]
    #[arg(long, value_name = "NAME", value_enum)]
    pub policy: Option<PolicyKind>,
    /// Directory for the durable process table [default: ~/.local/state/llmkernel]
    #[arg(long, env = "LLMKERNEL_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Fork into the background once the socket accepts connections
    #[arg(long)]
    pub daemon: bool,
    /// With --daemon: write (and lock) the daemon's pid here
    #[arg(long, value_name = "FILE", requires = "daemon")]
    pub pidfile: Option<PathBuf>,
    /// Append the log to this file [default: the journal under systemd, else stderr; with --daemon,
    /// llmkernel.log in the state directory]
    #[arg(long, env = "LLMKERNEL_LOG_FILE", value_name = "PATH")]
    pub log_file: Option<PathBuf>,
    /// Log filter (error, warn, info, debug, trace) [default: info, or RUST_LOG]
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Check a config file (default: the one the kernel would read) and exit: 0 valid, 1 not
    #[arg(long, value_name = "FILE", num_args = 0..=1, conflicts_with = "daemon")]
    pub check_config: Option<Option<PathBuf>>,
}

impl KernelArgs {
    /// The config file to read and whether it was asked for explicitly (a missing explicit file is an
    /// error; a missing default file is an empty config).
    pub fn config_path(&self) -> (PathBuf, bool) {
        match &self.config {
            Some(p) => (p.clone(), true),
            None => (paths::default_config_file(), false),
        }
    }

    /// `--check-config`: reads and validates the file without starting; returns what to print.
    pub fn check_config(&self, file: Option<&std::path::Path>) -> Result<String, ConfigError> {
        let (path, explicit) = match file {
            Some(f) => (f.to_path_buf(), true),
            None => self.config_path(),
        };
        if !explicit && !path.exists() {
            return Ok(format!(
                "{}: no such file; the defaults apply",
                path.display()
            ));
        }
        // Every value is checked as it is read, the policy and backend kind by their types.
        ConfigFile::load(&path)?;
        Ok(format!("{}: ok", path.display()))
    }

    /// Reads the config file and lays flags and environment over it.
    pub fn resolve(&self) -> Result<(KernelConfig, ConfigFile), ConfigError> {
        let (path, explicit) = self.config_path();
        let file = if explicit {
            ConfigFile::load(&path)?
        } else {
            ConfigFile::load_optional(&path)?
        };
        let mut config = KernelConfig::from_file(&file);
        if file.interrupts.system.spool_dir.is_none() {
            config.interrupts.spool_dir = paths::default_spool_dir(&self.socket_path(&file));
        }
        self.apply(&mut config);
        Ok((config, file))
    }

    /// Makes every path given on the command line absolute, for a daemon that works from `/`.
    pub fn absolutize(&mut self) -> std::io::Result<()> {
        for path in [
            &mut self.config,
            &mut self.socket,
            &mut self.state_dir,
            &mut self.pidfile,
            &mut self.log_file,
        ]
        .into_iter()
        .flatten()
        {
            *path = std::path::absolute(&*path)?;
        }
        Ok(())
    }

    /// Flags (and their environment variables) over a config.
    pub fn apply(&self, c: &mut KernelConfig) {
        match self.backend.as_slice() {
            [] => {}
            // One URL given beats the file's backends, as every flag beats the file.
            [one] => {
                c.backend_url = one.clone();
                c.backends.clear();
            }
            several => {
                c.backend_url = several[0].clone();
                c.backends = crate::config::backends::from_urls(several);
            }
        }
        if let Some(v) = &self.model {
            c.model = Some(v.clone());
        }
        if let Some(v) = self.cpus {
            c.cpus = v;
        }
        if let Some(v) = self.quantum {
            c.quantum_tokens = v;
        }
        if let Some(v) = self.policy {
            c.policy = v;
        }
        if let Some(v) = &self.state_dir {
            c.state_dir = v.clone();
        }
    }

    /// The socket path: flag or environment, else the config file's, else the default.
    pub fn socket_path(&self, file: &ConfigFile) -> PathBuf {
        self.socket
            .clone()
            .or_else(|| file.socket.clone())
            .unwrap_or_else(paths::default_socket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_backend_flag_replaces_the_files_backends_and_several_make_one_each() {
        let file = crate::config::KernelConfig {
            backends: crate::config::backends::from_urls(&[
                "http://f:1/v1".into(),
                "http://g:1/v1".into(),
            ]),
            ..KernelConfig::default()
        };
        let args = |urls: &[&str]| KernelArgs {
            backend: urls.iter().map(|u| u.to_string()).collect(),
            ..KernelArgs::default()
        };
        let mut c = file.clone();
        args(&["http://a:1/v1"]).apply(&mut c);
        assert!(c.backends.is_empty());
        assert_eq!(c.backend_url, "http://a:1/v1");
        let mut c = file.clone();
        args(&["http://a:1/v1", "http://b:1/v1"]).apply(&mut c);
        let urls: Vec<_> = c.backends.iter().map(|b| b.url.as_str()).collect();
        assert_eq!(urls, ["http://a:1/v1", "http://b:1/v1"]);
        let mut c = file.clone();
        args(&[]).apply(&mut c);
        assert_eq!(c.backends, file.backends);
    }
}
