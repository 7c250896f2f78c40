//! `[[backends]]`: several LLM servers, each its own set of slots serving its own models, scheduled
//! as one machine (SMP). Each entry has a `url` and optionally a `name`, a `kind` (learned as for
//! `[backend]` when absent), `slots` (else asked of llama-server's `/props` or `/slots`, else 1),
//! `models` (else asked of `GET {url}/models`), a managed `command`, and `swap = true` for a server
//! that holds one model at a time (Ollama with one loaded, llama-swap). Without any entry the single
//! `[backend]` section (or `--backend URL`) is the one backend, as before; `--backend` given more
//! than once makes one entry per URL.
//!
//! The timeouts, API key and retry settings of `[backend]` apply to every entry.

use crate::llm::BackendKind;
use serde::Deserialize;

/// One `[[backends]]` entry as the file says it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendsEntry {
    pub url: String,
    pub name: Option<String>,
    pub kind: Option<BackendKind>,
    pub slots: Option<u32>,
    pub models: Option<Vec<String>>,
    /// A server for the kernel to start and supervise: program and arguments.
    pub command: Option<Vec<String>>,
    /// The server holds one model at a time: work is grouped by model.
    #[serde(default)]
    pub swap: bool,
}

/// One backend of the machine, resolved from the file or the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendSpec {
    /// How `sched` and `ps -l` name it: the configured name, else `b1`, `b2`, ... in order.
    pub name: String,
    pub url: String,
    pub kind: BackendKind,
    /// Slots configured; `None`: asked of the server (else 1).
    pub slots: Option<u32>,
    /// Models configured; empty: asked of the server (a server that does not list any serves
    /// whatever it is asked for).
    pub models: Vec<String>,
    /// A server the kernel starts and supervises.
    pub command: Option<Vec<String>>,
    /// One model at a time (see the module docs).
    pub swap: bool,
}

/// The most slots one entry may configure (a cluster router may offer many).
pub const MAX_SLOTS_PER_BACKEND: u32 = 4096;

impl BackendsEntry {
    /// Checks one entry; the message names the key.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        super::backend_url::check_backend_url(&self.url).map_err(|m| ("url", m))?;
        if self
            .slots
            .is_some_and(|n| !(1..=MAX_SLOTS_PER_BACKEND).contains(&n))
        {
            let message = format!("must be 1 to {MAX_SLOTS_PER_BACKEND}");
            return Err(("slots", message));
        }
        if self.command.as_ref().is_some_and(Vec::is_empty) {
            return Err(("command", "must name a program".into()));
        }
        if self.name.as_ref().is_some_and(|n| !valid_name(n)) {
            let message = "must be 1 to 32 letters, digits, `-`, `_` or `.`".to_string();
            return Err(("name", message));
        }
        Ok(())
    }
}

fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The entries resolved, each named (`b1`, `b2`, ... where the file gives no name). Two entries
/// with one name are an error naming it.
pub fn resolve(entries: &[BackendsEntry]) -> Result<Vec<BackendSpec>, String> {
    let mut specs: Vec<BackendSpec> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let name = e.name.clone().unwrap_or_else(|| format!("b{}", i + 1));
        if specs.iter().any(|s| s.name == name) {
            return Err(format!("two [[backends]] entries are named `{name}`"));
        }
        specs.push(BackendSpec {
            name,
            url: e.url.clone(),
            kind: e.kind.unwrap_or_default(),
            slots: e.slots,
            models: e.models.clone().unwrap_or_default(),
            command: e.command.clone(),
            swap: e.swap,
        });
    }
    Ok(specs)
}

/// Checks every entry of a file, and that their names differ; the message names the entry and key.
pub fn check_file(entries: &[BackendsEntry]) -> Result<(), String> {
    for (i, e) in entries.iter().enumerate() {
        if let Err((key, message)) = e.validate() {
            return Err(format!(
                "`{key}` in [[backends]] entry {}: {message}",
                i + 1
            ));
        }
    }
    resolve(entries).map(|_| ())
}

/// The backends of `--backend URL` given several times: one each, slots and models asked of the
/// servers.
pub fn from_urls(urls: &[String]) -> Vec<BackendSpec> {
    let entries: Vec<_> = urls
        .iter()
        .map(|url| BackendsEntry {
            url: url.clone(),
            ..BackendsEntry::default()
        })
        .collect();
    resolve(&entries).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(url: &str, name: Option<&str>) -> BackendsEntry {
        BackendsEntry {
            url: url.into(),
            name: name.map(String::from),
            ..BackendsEntry::default()
        }
    }

    #[test]
    fn unnamed_entries_are_numbered_in_order_and_names_must_differ() {
        let specs = resolve(&[
            entry("http://a:1/v1", None),
            entry("http://b:1/v1", Some("big")),
        ])
        .unwrap();
        let names: Vec<_> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["b1", "big"]);
        let err = resolve(&[
            entry("http://a:1/v1", Some("x")),
            entry("http://b:1/v1", Some("x")),
        ])
        .unwrap_err();
        assert!(err.contains("`x`"), "{err}");
    }

    #[test]
    fn bad_entries_name_the_key() {
        let mut e = entry("localhost:8080", None);
        assert_eq!(e.validate().unwrap_err().0, "url");
        e.url = "http://localhost:8080/v1".into();
        e.slots = Some(0);
        assert_eq!(e.validate().unwrap_err().0, "slots");
        e.slots = Some(4);
        e.name = Some("has space".into());
        assert_eq!(e.validate().unwrap_err().0, "name");
        e.name = None;
        e.command = Some(vec![]);
        assert_eq!(e.validate().unwrap_err().0, "command");
        e.command = None;
        assert!(e.validate().is_ok());
    }

    #[test]
    fn a_file_with_backends_resolves_them_and_a_bad_entry_is_named() {
        let path = std::path::Path::new("c.toml");
        let text = "[[backends]]\nurl = \"http://a:1/v1\"\nslots = 2\nmodels = [\"x\"]\n\
                    [[backends]]\nname = \"big\"\nurl = \"http://b:1/v1\"\nswap = true\n";
        let file = crate::config::ConfigFile::parse(text, path).unwrap();
        let c = crate::config::KernelConfig::from_file(&file);
        assert_eq!(c.backends.len(), 2);
        assert_eq!(
            (c.backends[0].slots, c.backends[0].models.clone()),
            (Some(2), vec!["x".to_string()])
        );
        assert!(c.backends[1].swap && c.backends[1].name == "big");
        let bad = "cpus = 1\n[[backends]]\nurl = \"http://a:1/v1\"\n[[backends]]\nurl = \"http://b:1/v1\"\nslots = 0\n";
        let err = crate::config::ConfigFile::parse(bad, path)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`slots` in [[backends]] entry 2") && err.contains("c.toml:2"),
            "{err}"
        );
        let unknown = "[[backends]]\nurl = \"http://a:1/v1\"\nslot = 2\n";
        assert!(crate::config::ConfigFile::parse(unknown, path).is_err());
    }

    #[test]
    fn repeated_backend_flags_make_one_backend_each() {
        let specs = from_urls(&["http://a:1/v1".into(), "http://b:2/v1".into()]);
        assert_eq!(specs.len(), 2);
        assert_eq!((specs[1].name.as_str(), specs[1].slots), ("b2", None));
    }
}
