//! Run-time reconfiguration, what SIGHUP does with a freshly read config.
//!
//! Applied at once: the quantum, aging and policy, the per-type base priorities and allowances, the
//! limits, the interrupt handlers, their limits and the spool directory, the interval timer's period
//! (the daemon re-arms it), the backend (URL, model, API key, timeouts) for runs that start
//! afterwards (a run in flight finishes on the backend it started with; a new URL is tried at once,
//! whatever the old one's circuit said), and the retry settings from the next failure on. Waiting processes are ranked
//! again under the new settings; a running one meets them at its next quantum boundary.
//!
//! Also at once, for the next connection (open ones are kept): `max_connections`,
//! `max_connections_per_uid` and `allowed_group`; each change is reported in
//! [`Reconfigured::applied`] (the daemon logs it), so a reload says whether it took.
//!
//! Backends (`[[backends]]`): an entry that is new or changed is added once its server has said
//! what the entry leaves out (its slots and models), and one that is gone or changed is removed
//! after that, draining to the others (see [`crate::kernel::state`]); the managed `command` of an
//! added entry waits for a restart, and so does a switch between `[backend]` and `[[backends]]`.
//!
//! Needs a restart, and is kept as it was until then: `cpus` (the slot table), `state_dir`, the
//! front door (`[http]`: its listeners and keys file), the metrics address (`[metrics] listen`) and the managed backend's command (`[backend] command`, `health_url`, `startup_timeout_secs`); in the
//! daemon also the socket and the log level. With a managed backend, `cpus` is the server's slot
//! count and the file's is not compared.

use super::{Kernel, KernelError, backend_settings, interrupts::spool, make_policy};
use crate::config::KernelConfig;
use crate::config::backends::BackendSpec;
use crate::llm::Backend;
use std::sync::Arc;

/// What a reconfiguration did beyond the quiet changes, and what it left for a restart.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reconfigured {
    /// Settings that changed in the file but keep their old value until a restart.
    pub needs_restart: Vec<&'static str>,
    /// Changes to who may connect, and how often, each said in words (they apply at once, to the
    /// next connection; connections already open are kept).
    pub applied: Vec<String>,
}

impl Kernel {
    /// Applies `new` to the running kernel (see the module docs for what changes at once).
    pub fn reconfigure(
        self: &Arc<Self>,
        mut new: KernelConfig,
    ) -> Result<Reconfigured, KernelError> {
        let old = self.read(|s| s.config.clone());
        let mut needs_restart = Vec::new();
        if old.managed_backend.is_some() && new.managed_backend.is_some() {
            new.cpus = old.cpus;
        }
        if new.managed_backend != old.managed_backend {
            needs_restart.push("backend.command");
            new.managed_backend = old.managed_backend.clone();
        }
        // With `[[backends]]` the slots are the backends' own: `cpus` follows them.
        if !old.backends.is_empty() {
            new.cpus = old.cpus;
        }
        if new.backends.is_empty() != old.backends.is_empty() {
            needs_restart.push("backends");
            new.backends = old.backends.clone();
        }
        if new.cpus != old.cpus {
            needs_restart.push("cpus");
            new.cpus = old.cpus;
        }
        if new.state_dir != old.state_dir {
            needs_restart.push("state_dir");
            new.state_dir = old.state_dir.clone();
        }
        // The front door's listeners and keys are taken at start.
        if new.http != old.http {
            needs_restart.push("http");
            new.http = old.http.clone();
        }
        if new.metrics_listen != old.metrics_listen {
            needs_restart.push("metrics.listen");
            new.metrics_listen = old.metrics_listen;
        }
        let policy = (new.policy != old.policy
            || new.aging_points_per_sec != old.aging_points_per_sec)
            .then(|| make_policy(new.policy, &new));
        if new.backends.is_empty() && backend_changed(&old, &new) {
            self.set_client(Some(0), Backend::new(backend_settings(&new)));
        }
        if new.interrupts.spool_dir != old.interrupts.spool_dir {
            spool::prepare(&new.interrupts.spool_dir);
        }
        let mut applied = self.readmit(&old, &new);
        let (gone, added) = backends_diff(&old.backends, &new.backends);
        let next = new.clone();
        self.update(|s| s.reconfigure(new, policy));
        for spec in &added {
            applied.push(format!("backend {} added ({})", spec.name, spec.url));
        }
        for name in &gone {
            applied.push(format!(
                "backend {name} removed: its work drains to the others"
            ));
        }
        if !(added.is_empty() && gone.is_empty()) {
            let change = rebalance(Arc::clone(self), next, added, gone);
            self.tracker.spawn(change);
        }
        Ok(Reconfigured {
            needs_restart,
            applied,
        })
    }

    /// Applies changes to the connection limits and the allowed group, and says what changed.
    fn readmit(&self, old: &KernelConfig, new: &KernelConfig) -> Vec<String> {
        let mut applied = Vec::new();
        let open = self.connections.open();
        for (key, was, now) in [
            ("max_connections", old.max_connections, new.max_connections),
            (
                "max_connections_per_uid",
                old.max_connections_per_uid,
                new.max_connections_per_uid,
            ),
        ] {
            if was != now {
                applied.push(format!(
                    "{key} {was} -> {now}: applied to new connections ({open} open now are kept)"
                ));
            }
        }
        if old.allowed_group != new.allowed_group {
            let found = self.admission.set_group(new.allowed_group.as_deref());
            let describe = |g: &Option<String>| g.clone().unwrap_or_else(|| "(none)".into());
            let note = if found {
                "applied to new connections (open ones are kept)"
            } else {
                "applied, but no such group exists: it admits nobody"
            };
            applied.push(format!(
                "allowed_group {} -> {}: {note}",
                describe(&old.allowed_group),
                describe(&new.allowed_group)
            ));
        }
        applied
    }
}

/// The backends a reload removes (by name) and adds: a backend whose entry changed is both.
fn backends_diff(old: &[BackendSpec], new: &[BackendSpec]) -> (Vec<String>, Vec<BackendSpec>) {
    let gone = old
        .iter()
        .filter(|o| !new.contains(o))
        .map(|o| o.name.clone())
        .collect();
    let added = new.iter().filter(|n| !old.contains(n)).cloned().collect();
    (gone, added)
}

/// Learns the added backends (their slots and models, asking the servers where the entries are
/// silent), gives each its client and its slots, then removes the gone ones: added first, so the
/// work of a removed backend can move to its replacement at once. A managed `command` of an added
/// backend waits for a restart.
async fn rebalance(
    kernel: Arc<Kernel>,
    config: KernelConfig,
    added: Vec<BackendSpec>,
    gone: Vec<String>,
) {
    let mut found = Vec::new();
    for spec in added {
        let learned = tokio::select! {
            learned = crate::kernel::backends::discover(&spec, None) => learned,
            () = kernel.shutdown.cancelled() => return,
        };
        found.push((spec, learned));
    }
    kernel.update(|s| {
        for (spec, learned) in found {
            // The client first: the backend takes work in this same update.
            kernel.set_client(None, crate::kernel::backends::start::client(&config, &spec));
            s.add_backend(&spec, learned);
        }
        for name in gone {
            s.remove_backend(&name);
        }
    });
}

fn backend_changed(old: &KernelConfig, new: &KernelConfig) -> bool {
    old.backend_url != new.backend_url
        || old.model != new.model
        || old.api_key != new.api_key
        || old.connect_timeout != new.connect_timeout
        || old.first_token_timeout != new.first_token_timeout
        || old.token_timeout != new.token_timeout
        || old.backend_kind != new.backend_kind
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::ProcessType;
    use tokio_util::sync::CancellationToken;

    async fn kernel(mut config: KernelConfig) -> (Arc<Kernel>, tempfile::TempDir) {
        let tmp = tempfile::tempdir().unwrap();
        config.interrupts.spool_dir = tmp.path().join("spool");
        // Never the user's own state directory (and never one another test holds).
        config.state_dir = tmp.path().join("state");
        let listener = tokio::net::UnixListener::bind(tmp.path().join("k.sock")).unwrap();
        let started = super::super::start(config, listener, CancellationToken::new())
            .await
            .unwrap();
        (started.kernel().clone(), tmp)
    }

    #[tokio::test]
    async fn live_settings_change_and_restart_only_ones_are_kept_and_named() {
        let (k, tmp) = kernel(KernelConfig::default()).await;
        let mut new = KernelConfig {
            interrupts: k.read(|s| s.config.interrupts.clone()),
            quantum_tokens: 5,
            cpus: 3,
            state_dir: tmp.path().join("elsewhere"),
            backend_url: "http://127.0.0.1:9/v1".into(),
            metrics_listen: Some(([127, 0, 0, 1], 9).into()),
            ..KernelConfig::default()
        };
        new.interrupts.system.template = "New: {message}".into();
        new.types[4].allowance_tokens = 7;
        new.http.listen = Some("127.0.0.1:9".parse().unwrap());
        let done = k.reconfigure(new).unwrap();
        assert_eq!(
            done.needs_restart,
            ["cpus", "state_dir", "http", "metrics.listen"]
        );
        let c = k.read(|s| s.config.clone());
        assert_eq!(c.quantum_tokens, 5);
        assert_eq!(c.cpus, 1, "the slot table keeps its size until a restart");
        assert_eq!(c.interrupts.system.prompt("x"), "New: x");
        assert_eq!(c.type_settings(ProcessType::System).allowance_tokens, 7);
        assert_eq!(k.backend().url(), "http://127.0.0.1:9/v1");
        assert_eq!(
            c.http.listen, None,
            "the front door keeps its listeners until a restart"
        );
        k.shutdown.cancel();
    }

    #[test]
    fn a_changed_backend_entry_is_removed_and_added_and_an_unchanged_one_kept() {
        let spec = |name: &str, url: &str| BackendSpec {
            name: name.into(),
            url: url.into(),
            kind: Default::default(),
            slots: None,
            models: vec![],
            command: None,
            swap: false,
        };
        let old = [spec("a", "http://a/v1"), spec("b", "http://b/v1")];
        let new = [
            spec("a", "http://a/v1"),
            spec("b", "http://b2/v1"),
            spec("c", "http://c/v1"),
        ];
        let (gone, added) = backends_diff(&old, &new);
        assert_eq!(gone, ["b"]);
        let added: Vec<_> = added.iter().map(|s| s.url.as_str()).collect();
        assert_eq!(added, ["http://b2/v1", "http://c/v1"]);
    }

    #[tokio::test]
    async fn a_new_backend_command_waits_for_a_restart() {
        let (k, _tmp) = kernel(KernelConfig::default()).await;
        let new = KernelConfig {
            interrupts: k.read(|s| s.config.interrupts.clone()),
            state_dir: k.read(|s| s.config.state_dir.clone()),
            managed_backend: Some(crate::config::ManagedBackend {
                command: vec!["llama-server".into()],
                health_url: None,
                startup_timeout: crate::config::DEFAULT_STARTUP_TIMEOUT,
            }),
            ..KernelConfig::default()
        };
        let done = k.reconfigure(new).unwrap();
        assert_eq!(done.needs_restart, ["backend.command"]);
        assert!(done.applied.is_empty(), "{:?}", done.applied);
        assert!(k.read(|s| s.config.managed_backend.is_none()));
        k.shutdown.cancel();
    }

    #[tokio::test]
    async fn connection_limits_and_the_allowed_group_apply_and_say_so() {
        let (k, _tmp) = kernel(KernelConfig::default()).await;
        let new = KernelConfig {
            interrupts: k.read(|s| s.config.interrupts.clone()),
            state_dir: k.read(|s| s.config.state_dir.clone()),
            max_connections: 3,
            max_connections_per_uid: 1,
            allowed_group: Some("no-such-group-here".into()),
            ..KernelConfig::default()
        };
        let done = k.reconfigure(new).unwrap();
        assert!(done.needs_restart.is_empty());
        assert_eq!(
            done.applied,
            [
                "max_connections 512 -> 3: applied to new connections (0 open now are kept)",
                "max_connections_per_uid 64 -> 1: applied to new connections (0 open now are kept)",
                "allowed_group (none) -> no-such-group-here: applied, but no such group exists: it \
                 admits nobody",
            ]
        );
        let limits = k.read(|s| (s.config.max_connections, s.config.max_connections_per_uid));
        assert_eq!(limits, (3, 1));
        k.shutdown.cancel();
    }
}
