//! The memory tables: `free` (each backend's slots, what each caches, swap) and the lines `sched`
//! ends with. Pure functions of the kernel's [`MemoryStatus`].

use crate::proto::MemoryStatus;
use crate::shell::terminal_safe;

/// The memory in brief, for `sched`: the context per slot and whether swap is on.
pub fn memory_summary(m: &MemoryStatus) -> String {
    let context = m
        .backends
        .iter()
        .map(|b| {
            b.context_tokens
                .map_or("unknown".to_string(), |n| format!("{n} tokens"))
        })
        .collect::<Vec<_>>()
        .join(", ");
    let swap = if m.swap.enabled {
        format!("on, {} processes swapped out", m.swap.processes)
    } else {
        "off".to_string()
    };
    format!("context per slot: {context}\nswap: {swap}\n")
}

/// The `free` table: one line per slot of each backend, then swap.
pub fn free_table(m: &MemoryStatus) -> String {
    let mut out = String::new();
    for b in &m.backends {
        let size = b
            .context_tokens
            .map_or("unknown".to_string(), |n| format!("{n} tokens"));
        out.push_str(&format!(
            "backend {}: context {size} per slot ({}), tokens counted by {}\n",
            terminal_safe::one_line(&b.url),
            b.context_source,
            b.tokenizer
        ));
        out.push_str(&format!(
            "{:>5} {:>8} {:>8} {:>11}\n",
            "SLOT", "RUNNING", "CACHED", "USED"
        ));
        for s in &b.slots {
            let pid = |p: Option<crate::proto::Pid>| p.map_or("-".to_string(), |p| p.to_string());
            let used = match (s.used, b.context_tokens) {
                (Some(u), Some(n)) => format!("{u}/{n}"),
                (Some(u), None) => u.to_string(),
                (None, _) => "-".to_string(),
            };
            out.push_str(&format!(
                "{:>5} {:>8} {:>8} {:>11}\n",
                s.slot,
                pid(s.running),
                pid(s.cached),
                used
            ));
        }
    }
    let w = &m.swap;
    match (&w.dir, w.enabled) {
        (Some(dir), true) => out.push_str(&format!(
            "swap: {} of {} bytes in {}, {} processes swapped out; {} saves, {} restores, {} lost\n",
            w.used_bytes,
            w.max_bytes,
            terminal_safe::one_line(dir),
            w.processes,
            w.saves,
            w.restores,
            w.lost_restores
        )),
        (Some(_), false) => out.push_str(&format!(
            "swap: off ({}); conversations are recomputed\n",
            terminal_safe::one_line(w.off_reason.as_deref().unwrap_or("turned off"))
        )),
        (None, _) => out.push_str("swap: off (set [swap] dir to llama-server's --slot-save-path)\n"),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_lists_each_slot_and_swap() {
        use crate::proto::{BackendMemory, Pid, SlotMemory, SwapUse};
        let status = MemoryStatus {
            backends: vec![BackendMemory {
                url: "http://h/v1".into(),
                context_tokens: Some(2048),
                context_source: "server".into(),
                tokenizer: "server".into(),
                slots: vec![SlotMemory {
                    slot: 0,
                    running: None,
                    cached: Some(Pid(4)),
                    used: Some(300),
                }],
            }],
            swap: SwapUse {
                enabled: true,
                dir: Some("/tmp/swap".into()),
                used_bytes: 10,
                max_bytes: 100,
                processes: 1,
                saves: 1,
                restores: 0,
                lost_restores: 0,
                off_reason: None,
            },
        };
        let text = free_table(&status);
        assert!(
            text.contains("context 2048 tokens per slot (server)"),
            "{text}"
        );
        let slot: Vec<_> = text.lines().nth(2).unwrap().split_whitespace().collect();
        assert_eq!(slot, ["0", "-", "4", "300/2048"]);
        assert!(text.contains("swap: 10 of 100 bytes in /tmp/swap, 1 processes swapped out"));
    }
}
