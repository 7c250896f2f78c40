//! The `[soft_limit]` section: before a process reaches its token allowance, the kernel tells it to
//! wrap up — at the first quantum boundary past `fraction` of its allowance, its answer continues
//! with a short system note saying how many tokens are left (the LLM's SIGXCPU). Off unless
//! `fraction` is set (0.9 is a good start), so answers stay as the backend gives them by default;
//! `types_off` keeps it off for some types.
//!
//! ```toml
//! [soft_limit]
//! fraction = 0.9
//! types_off = ["HOUSEKEEPING"]
//! ```

use crate::proto::ProcessType;
use serde::Deserialize;

/// `[soft_limit]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoftLimitSection {
    pub fraction: Option<f64>,
    #[serde(default)]
    pub types_off: Vec<String>,
}

/// When processes are told to wrap up.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SoftLimitConfig {
    /// The share of the allowance after which a process is told; `None`: never.
    pub fraction: Option<f64>,
    pub types_off: Vec<ProcessType>,
}

impl SoftLimitConfig {
    /// The token count after which a process of `process_type` with `allowance` is told, if ever.
    pub fn threshold(&self, process_type: ProcessType, allowance: u32) -> Option<u32> {
        let fraction = self.fraction?;
        if self.types_off.contains(&process_type) {
            return None;
        }
        Some((f64::from(allowance) * fraction).floor() as u32)
    }
}

impl SoftLimitSection {
    /// Checks and resolves the section: `(key, message)` for the first bad value.
    pub fn resolve(&self) -> Result<SoftLimitConfig, (&'static str, String)> {
        if let Some(f) = self.fraction
            && !(f > 0.0 && f < 1.0)
        {
            return Err((
                "fraction",
                format!("must be between 0 and 1 (like 0.9), not {f}"),
            ));
        }
        let types_off = self
            .types_off
            .iter()
            .map(|t| t.parse::<ProcessType>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ("types_off", e))?;
        Ok(SoftLimitConfig {
            fraction: self.fraction,
            types_off,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_threshold_is_the_fraction_of_the_allowance_unless_off_for_the_type() {
        let section = SoftLimitSection {
            fraction: Some(0.9),
            types_off: vec!["HOUSEKEEPING".into()],
        };
        let c = section.resolve().expect("valid");
        assert_eq!(c.threshold(ProcessType::User, 1000), Some(900));
        assert_eq!(c.threshold(ProcessType::Housekeeping, 1000), None);
        assert_eq!(
            SoftLimitConfig::default().threshold(ProcessType::User, 1000),
            None
        );
        for (fraction, types) in [(Some(1.5), vec![]), (None, vec!["CHORES".to_string()])] {
            let bad = SoftLimitSection {
                fraction,
                types_off: types,
            };
            assert!(bad.resolve().is_err());
        }
    }
}
