//! The `[quotas]` section: token quotas per user and per process type, like cgroups' `cpu.max` — so
//! many generated tokens per window (`alice = "200k/hour"`, `HOUSEKEEPING = "1M/day"`). A key that
//! names a process type (in capitals, as `ps` prints it) limits that type; any other key is a user
//! name or a numeric uid. Windows are fixed and aligned to the Unix epoch (an hour's quota renews on
//! the hour), so the kernel can say exactly when a quota renews.

use crate::proto::ProcessType;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Whose tokens a quota counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum QuotaSubject {
    User(u32),
    Type(ProcessType),
}

/// So many tokens per window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaLimit {
    pub tokens: u64,
    pub window_ms: u64,
}

impl QuotaLimit {
    /// Parses `200k/hour`, `1M/day`, `5000/minute` (also `min`, `h`, `d`, `week`).
    pub fn parse(text: &str) -> Result<QuotaLimit, String> {
        let usage = || format!("{text:?} is not a quota like \"200k/hour\" or \"1M/day\"");
        let (amount, window) = text.split_once('/').ok_or_else(usage)?;
        let amount = amount.trim();
        let (digits, scale) = match amount.chars().last() {
            Some('k' | 'K') => (&amount[..amount.len() - 1], 1_000),
            Some('M' | 'm') => (&amount[..amount.len() - 1], 1_000_000),
            Some('G' | 'g') => (&amount[..amount.len() - 1], 1_000_000_000),
            _ => (amount, 1),
        };
        let tokens = digits
            .trim()
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(scale))
            .ok_or_else(usage)?;
        let window_ms = match window.trim() {
            "minute" | "min" | "m" => 60_000,
            "hour" | "h" => 3_600_000,
            "day" | "d" => 86_400_000,
            "week" | "w" => 7 * 86_400_000,
            _ => return Err(usage()),
        };
        Ok(QuotaLimit { tokens, window_ms })
    }

    /// The window as users write it.
    pub fn window_name(&self) -> &'static str {
        match self.window_ms {
            60_000 => "minute",
            3_600_000 => "hour",
            86_400_000 => "day",
            _ => "week",
        }
    }
}

impl fmt::Display for QuotaLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", short_tokens(self.tokens), self.window_name())
    }
}

/// A token count as `12k`, `1.5M`, `800`.
pub fn short_tokens(n: u64) -> String {
    let scaled = |n: u64, unit: u64, suffix: &str| {
        if n.is_multiple_of(unit) || n >= 100 * unit {
            format!("{}{suffix}", n / unit)
        } else {
            format!("{:.1}{suffix}", n as f64 / unit as f64)
        }
    };
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => scaled(n, 1_000, "k"),
        _ => scaled(n, 1_000_000, "M"),
    }
}

/// The quotas in force: by user and by type.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QuotasConfig {
    pub limits: BTreeMap<QuotaSubject, QuotaLimit>,
}

impl QuotasConfig {
    /// The quotas that count a process of `uid` and `process_type`.
    pub fn applying(
        &self,
        uid: u32,
        process_type: ProcessType,
    ) -> impl Iterator<Item = (QuotaSubject, &QuotaLimit)> {
        [QuotaSubject::User(uid), QuotaSubject::Type(process_type)]
            .into_iter()
            .filter_map(|s| self.limits.get(&s).map(|l| (s, l)))
    }
}

/// `[quotas]` as written: key to quota text.
pub type QuotasSection = BTreeMap<String, String>;

/// Resolves the section: `(key, message)` for the first bad entry.
pub fn resolve(section: &QuotasSection) -> Result<QuotasConfig, (String, String)> {
    let mut limits = BTreeMap::new();
    for (key, text) in section {
        let limit = QuotaLimit::parse(text).map_err(|e| (key.clone(), e))?;
        limits.insert(subject(key).map_err(|e| (key.clone(), e))?, limit);
    }
    Ok(QuotasConfig { limits })
}

/// A type in capitals, a numeric uid, or a user name.
fn subject(key: &str) -> Result<QuotaSubject, String> {
    if let Some(t) = ProcessType::ALL.into_iter().find(|t| t.name() == key) {
        return Ok(QuotaSubject::Type(t));
    }
    if let Ok(uid) = key.parse::<u32>() {
        return Ok(QuotaSubject::User(uid));
    }
    match nix::unistd::User::from_name(key) {
        Ok(Some(user)) => Ok(QuotaSubject::User(user.uid.as_raw())),
        _ => Err(format!(
            "`{key}` is neither a process type (in capitals, like HOUSEKEEPING) nor a known user"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_parse_with_their_scales_and_windows() {
        let q = |t| QuotaLimit::parse(t).map(|l| (l.tokens, l.window_ms));
        assert_eq!(q("200k/hour"), Ok((200_000, 3_600_000)));
        assert_eq!(q("1M/day"), Ok((1_000_000, 86_400_000)));
        assert_eq!(q("5000 / minute"), Ok((5000, 60_000)));
        for bad in [
            "",
            "200k",
            "lots/hour",
            "5/fortnight",
            "99999999999999999999G/day",
        ] {
            assert!(QuotaLimit::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            QuotaLimit::parse("200k/hour").map(|l| l.to_string()),
            Ok("200k/hour".into())
        );
    }

    #[test]
    fn token_counts_are_shown_short() {
        let shown: Vec<String> = [0, 999, 12_000, 12_345, 200_000, 1_500_000]
            .map(short_tokens)
            .into();
        assert_eq!(shown, ["0", "999", "12k", "12.3k", "200k", "1.5M"]);
    }

    #[test]
    fn keys_are_types_in_capitals_uids_or_user_names() {
        let section: QuotasSection = [
            ("HOUSEKEEPING".to_string(), "1M/day".to_string()),
            ("1000".to_string(), "200k/hour".to_string()),
            ("root".to_string(), "5k/minute".to_string()),
        ]
        .into();
        let quotas = resolve(&section).expect("resolves");
        let subjects: Vec<_> = quotas.limits.keys().copied().collect();
        assert_eq!(
            subjects,
            [
                QuotaSubject::User(0),
                QuotaSubject::User(1000),
                QuotaSubject::Type(ProcessType::Housekeeping)
            ]
        );
        let applying: Vec<_> = quotas
            .applying(1000, ProcessType::Housekeeping)
            .map(|a| a.0)
            .collect();
        assert_eq!(applying.len(), 2);
        let bad: QuotasSection = [("no-such-user-xyz".to_string(), "1k/hour".to_string())].into();
        assert!(
            resolve(&bad)
                .unwrap_err()
                .1
                .contains("neither a process type")
        );
    }
}
