//! Limits on the system calls of LLM processes (see [`crate::kernel::syscalls`]), like rlimits: how
//! deep a tree of spawned processes may grow, how many children one process may spawn in its life,
//! and how much of a child's output a `wait` hands back. A call past a limit is answered with an
//! `EAGAIN` tool error, so a model that spawns in a loop meets a wall, never a fork bomb.

/// The limits, with their defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyscallLimits {
    /// Generations below a user's process: 3 lets a planner's researchers have helpers of their
    /// own and no further (a process the user started is depth 0).
    pub max_depth: u32,
    /// Children one process may spawn in its whole life (ended ones count): 8 covers a planner
    /// fanning out to a handful of researchers, and stops a loop after a few turns.
    pub max_children: u32,
    /// Bytes of a child's output one `wait` result carries (the rest is cut, and said so): 16 KiB
    /// keeps the caller's conversation well inside a small model's context.
    pub max_result_bytes: usize,
}

impl Default for SyscallLimits {
    fn default() -> Self {
        SyscallLimits {
            max_depth: 3,
            max_children: 8,
            max_result_bytes: 16 * 1024,
        }
    }
}

/// `[syscalls]` in the config file: any limit left out keeps its default.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyscallsSection {
    pub max_depth: Option<u32>,
    pub max_children: Option<u32>,
    pub max_result_bytes: Option<usize>,
}

impl SyscallsSection {
    /// Sets the limits the section names.
    pub fn apply(&self, limits: &mut SyscallLimits) {
        if let Some(depth) = self.max_depth {
            limits.max_depth = depth;
        }
        if let Some(children) = self.max_children {
            limits.max_children = children;
        }
        if let Some(bytes) = self.max_result_bytes {
            limits.max_result_bytes = bytes;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{ConfigFile, KernelConfig};

    #[test]
    fn the_section_sets_what_it_names_and_defaults_keep_the_rest() {
        let file: ConfigFile = toml::from_str("[syscalls]\nmax_children = 2\n").unwrap();
        let c = KernelConfig::from_file(&file);
        assert_eq!(c.syscalls.max_children, 2);
        assert_eq!(c.syscalls.max_depth, 3);
        assert!(toml::from_str::<ConfigFile>("[syscalls]\nmax_kids = 2\n").is_err());
    }
}
