//! The scheduling policies by name: one type for the `--policy` flag (clap), the config file's
//! `policy` key (serde), the `sched` verb and the kernel, which builds the policy itself from it
//! (`kernel::scheduler::make_policy`). A name that is not one of these is refused where it is read:
//! as a usage error naming the flag, or as a config error naming the file, line and key.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A scheduling policy, by the name users give it.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
#[value(rename_all = "lower")]
pub enum PolicyKind {
    /// Type priorities, nice and aging (the default).
    #[default]
    Priority,
    /// Round robin by quantum.
    #[serde(rename = "rr")]
    #[value(name = "rr")]
    RoundRobin,
    /// A weighted fair share of tokens across users and processes.
    Fair,
    /// A multi-level feedback queue: short work stays high, long work sinks, periodic boost.
    Mlfq,
    /// Earliest deadline first within each priority level.
    Edf,
}

impl PolicyKind {
    /// Every policy, in the order `sched` lists them.
    pub const ALL: [PolicyKind; 5] = [
        PolicyKind::Priority,
        PolicyKind::RoundRobin,
        PolicyKind::Fair,
        PolicyKind::Mlfq,
        PolicyKind::Edf,
    ];

    /// The name on the command line, in the config file and in `sched`.
    pub fn name(self) -> &'static str {
        match self {
            PolicyKind::Priority => "priority",
            PolicyKind::RoundRobin => "rr",
            PolicyKind::Fair => "fair",
            PolicyKind::Mlfq => "mlfq",
            PolicyKind::Edf => "edf",
        }
    }

    /// Every name, comma-separated, for messages.
    pub fn names() -> String {
        PolicyKind::ALL.map(PolicyKind::name).join(", ")
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, so that widths in tables (`{:<10}`) apply.
        f.pad(self.name())
    }
}

impl FromStr for PolicyKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PolicyKind::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("unknown policy `{s}` (known: {})", PolicyKind::names()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    #[test]
    fn every_policy_has_one_name_in_clap_serde_and_sched() {
        for kind in PolicyKind::ALL {
            let name = kind.name();
            assert_eq!(name.parse::<PolicyKind>(), Ok(kind));
            let clap_name = kind.to_possible_value().map(|v| v.get_name().to_string());
            assert_eq!(clap_name.as_deref(), Some(name));
            assert_eq!(
                serde_json::to_string(&kind).ok(),
                Some(format!("\"{name}\""))
            );
            let back: PolicyKind = serde_json::from_str(&format!("\"{name}\"")).expect("serde");
            assert_eq!(back, kind);
        }
        assert_eq!(PolicyKind::names(), "priority, rr, fair, mlfq, edf");
    }

    #[test]
    fn an_unknown_name_is_refused_with_the_known_ones() {
        let err = "lottery".parse::<PolicyKind>().unwrap_err();
        assert_eq!(
            err,
            "unknown policy `lottery` (known: priority, rr, fair, mlfq, edf)"
        );
        assert!(serde_json::from_str::<PolicyKind>("\"RR\"").is_err());
    }
}
