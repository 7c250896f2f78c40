//! The `[http]` section: the OpenAI-compatible front door ([`crate::http`]). Its Unix socket
//! (`llmkernel-http.sock` beside the kernel's) is on unless `enabled = false`; a TCP listener is
//! opened only when `listen` names an address, and one that is not loopback needs a keys file.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// `[http]` as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// Serve HTTP on the Unix socket beside the kernel's (default true).
    pub enabled: Option<bool>,
    /// A TCP address to listen on too, e.g. `127.0.0.1:8080` (default: none).
    pub listen: Option<String>,
    /// A 0600 file of `KEY USER` lines: TCP callers authenticate with `Authorization: Bearer KEY`.
    pub keys_file: Option<PathBuf>,
}

/// The front door's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpConfig {
    pub enabled: bool,
    pub listen: Option<SocketAddr>,
    pub keys_file: Option<PathBuf>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            enabled: true,
            listen: None,
            keys_file: None,
        }
    }
}

impl HttpSection {
    /// Checks the section: `(key, message)` for the first bad value.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let Some(listen) = &self.listen else {
            return Ok(());
        };
        let addr: SocketAddr = listen.parse().map_err(|_| {
            (
                "listen",
                format!(
                    "`listen` must be an address and port such as 127.0.0.1:8080, not {listen:?}"
                ),
            )
        })?;
        if !addr.ip().is_loopback() && self.keys_file.is_none() {
            let message = format!(
                "`listen` = {addr} is not a loopback address; it needs `keys_file` so that callers \
                 authenticate"
            );
            return Err(("listen", message));
        }
        Ok(())
    }

    pub fn apply(&self, c: &mut HttpConfig) {
        if let Some(enabled) = self.enabled {
            c.enabled = enabled;
        }
        if let Some(listen) = self.listen.as_deref().and_then(|l| l.parse().ok()) {
            c.listen = Some(listen);
        }
        if self.keys_file.is_some() {
            c.keys_file = self.keys_file.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(listen: &str, keys: bool) -> HttpSection {
        HttpSection {
            enabled: None,
            listen: Some(listen.into()),
            keys_file: keys.then(|| PathBuf::from("/k")),
        }
    }

    #[test]
    fn an_address_beyond_loopback_needs_keys_and_a_bad_one_is_named() {
        assert!(section("127.0.0.1:8080", false).validate().is_ok());
        assert!(section("[::1]:8080", false).validate().is_ok());
        assert!(section("0.0.0.0:8080", true).validate().is_ok());
        let (key, message) = section("0.0.0.0:8080", false).validate().unwrap_err();
        assert_eq!(key, "listen");
        assert!(message.contains("keys_file"), "{message}");
        let (_, message) = section("localhost", false).validate().unwrap_err();
        assert!(message.contains("address and port"), "{message}");
    }
}
