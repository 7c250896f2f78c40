//! The slot kept for interactive work, on the managed llama-server: the kernel keeps some slots free
//! of background work while interactive work comes (`[scheduler] reserved_slots`, one by default).
//! On a server that batches, a spare slot costs context memory, not throughput; so the kernel starts
//! llama-server with the kept slots on top of the `-np N` its command names: background work keeps
//! the N slots the command asks for, and a question finds a slot free at once. The context per slot
//! stays what the command gives (`-c` grows with the slots, since llama-server divides it among
//! them, unless the cache is unified with `--kv-unified`).
//!
//! Only a llama-server command naming `-np` is changed: another server's flags, or its default slot
//! count, are not the kernel's to guess.

use crate::config::ManagedBackend;

/// `m` with its llama-server started with `reserved` more slots (`None`: one), and its context grown
/// to match; `m` unchanged when it is not a llama-server command naming `-np`, or nothing is kept.
pub fn with_reserved_slots(m: &ManagedBackend, reserved: Option<u32>) -> ManagedBackend {
    let reserved = reserved.unwrap_or(1);
    let is_llama_server = m.command.first().is_some_and(|program| {
        std::path::Path::new(program)
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with("llama-server"))
    });
    let Some(asked) = flag_value(&m.command, &["-np", "--parallel"]) else {
        return m.clone();
    };
    if !is_llama_server || reserved == 0 || asked.value == 0 {
        return m.clone();
    }
    let slots = asked.value.saturating_add(reserved);
    let mut command = asked.replaced(&m.command, slots);
    let unified = command.iter().any(|a| a == "-kvu" || a == "--kv-unified");
    let context = flag_value(&command, &["-c", "--ctx-size"]);
    if let Some(context) = context.filter(|c| !unified && c.value > 0) {
        let per_slot = context.value / asked.value;
        command = context.replaced(&command, per_slot.saturating_mul(slots));
    }
    tracing::info!(
        "llama-server gets {slots} slots: the {} its command names for any work, and {reserved} \
         kept for interactive work ([scheduler] reserved_slots)",
        asked.value
    );
    ManagedBackend {
        command,
        ..m.clone()
    }
}

/// A flag's number in a command line, and where it is.
struct FlagValue {
    /// The index of the argument holding the number.
    index: usize,
    /// The text before the number in that argument (`--parallel=` in `--parallel=4`), if any.
    prefix: String,
    value: u32,
}

impl FlagValue {
    /// `command` with the number replaced by `value`.
    fn replaced(&self, command: &[String], value: u32) -> Vec<String> {
        let mut command = command.to_vec();
        command[self.index] = format!("{}{value}", self.prefix);
        command
    }
}

/// The number after any of `flags` (`-np 4`, `--parallel 4`, `--parallel=4`), if a command names one.
fn flag_value(command: &[String], flags: &[&str]) -> Option<FlagValue> {
    command.iter().enumerate().find_map(|(i, arg)| {
        let (index, prefix, text) = match arg.split_once('=') {
            Some((flag, value)) if flags.contains(&flag) => (i, format!("{flag}="), value),
            _ if flags.contains(&arg.as_str()) => {
                (i + 1, String::new(), command.get(i + 1)?.as_str())
            }
            _ => return None,
        };
        Some(FlagValue {
            index,
            prefix,
            value: text.parse().ok()?,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn managed(command: &str) -> ManagedBackend {
        ManagedBackend {
            command: command.split(' ').map(String::from).collect(),
            health_url: None,
            startup_timeout: Duration::from_secs(1),
        }
    }

    fn command_of(m: &ManagedBackend) -> String {
        m.command.join(" ")
    }

    #[test]
    fn llama_server_gets_the_kept_slot_on_top_and_each_slot_keeps_its_context() {
        let m = managed("/cache/llama-server-11434 -m m.gguf -np 4 -c 16384 --port 5001");
        assert_eq!(
            command_of(&with_reserved_slots(&m, None)),
            "/cache/llama-server-11434 -m m.gguf -np 5 -c 20480 --port 5001"
        );
        assert_eq!(
            command_of(&with_reserved_slots(&m, Some(2))),
            "/cache/llama-server-11434 -m m.gguf -np 6 -c 24576 --port 5001"
        );
        let long_flags = managed("llama-server --parallel=2 --ctx-size 8192");
        assert_eq!(
            command_of(&with_reserved_slots(&long_flags, None)),
            "llama-server --parallel=3 --ctx-size 12288"
        );
    }

    #[test]
    fn a_unified_cache_or_no_context_flag_leaves_the_context_alone() {
        let unified = managed("llama-server -np 4 -c 8192 --kv-unified");
        assert_eq!(
            command_of(&with_reserved_slots(&unified, None)),
            "llama-server -np 5 -c 8192 --kv-unified"
        );
        let default_context = managed("llama-server -np 2");
        assert_eq!(
            command_of(&with_reserved_slots(&default_context, None)),
            "llama-server -np 3"
        );
    }

    #[test]
    fn other_servers_no_np_or_nothing_kept_leave_the_command_as_it_is() {
        for (command, reserved) in [
            ("vllm serve m --max-num-seqs 4 -np 4", None),
            ("llama-server -m m.gguf -c 8192", None),
            ("llama-server -np 4 -c 8192", Some(0)),
            ("llama-server -np many", None),
        ] {
            let m = managed(command);
            assert_eq!(command_of(&with_reserved_slots(&m, reserved)), command);
        }
    }
}
