//! How the shell prints the kernel's tables: `ps` rows (cut to the terminal's width) and the `sched`
//! summary. Pure functions of the data, so tests pin the exact text.

use crate::proto::{ProcessInfo, ProcessList};
use std::collections::HashMap;

/// Column width for the prompt when the terminal's width is unknown.
const DEFAULT_WIDTH: usize = 100;

/// The terminal's width, if stdout is one.
pub fn terminal_width() -> usize {
    if let Some(cols) = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()) {
        return cols;
    }
    let mut size = nix::libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize into the pointed-to struct and nothing else.
    let ok =
        unsafe { nix::libc::ioctl(nix::libc::STDOUT_FILENO, nix::libc::TIOCGWINSZ, &mut size) }
            == 0;
    if ok && size.ws_col > 0 {
        size.ws_col as usize
    } else {
        DEFAULT_WIDTH
    }
}

/// A user name for a uid, falling back to the number.
pub fn user_name(uid: u32, cache: &mut HashMap<u32, String>) -> String {
    cache
        .entry(uid)
        .or_insert_with(|| {
            nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                .ok()
                .flatten()
                .map_or_else(|| uid.to_string(), |u| u.name)
        })
        .clone()
}

/// `M:SS` of processor (slot) time, as ps prints TIME.
pub fn format_time(ms: u64) -> String {
    let secs = ms / 1000;
    format!("{}:{:02}", secs / 60, secs % 60)
}

/// The STAT column: the state letter, `<` for raised priority, `N` for lowered.
pub fn stat(p: &ProcessInfo) -> String {
    let mut s = p.state.letter().to_string();
    if p.nice < 0 {
        s.push('<');
    } else if p.nice > 0 {
        s.push('N');
    }
    s
}

fn one_line(text: &str, width: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() <= width {
        return flat;
    }
    let mut cut: String = flat.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// The `ps` table: a header, then one row per process, PID first.
pub fn ps_table(list: &ProcessList, long: bool, width: usize) -> String {
    let mut names = HashMap::new();
    let mut out = String::new();
    let header = if long {
        format!(
            "{:>6} {:<8} {:<15} {:>4} {:>3} {:<4} {:>11} {:>6} {:>7} {:>4} {:>4} {:>5} {:>6} ",
            "PID",
            "USER",
            "TYPE",
            "PRI",
            "NI",
            "STAT",
            "TOKENS",
            "PTOK",
            "TIME",
            "CSW",
            "SLOT",
            "QPOS",
            "TOK/S"
        )
    } else {
        format!(
            "{:>6} {:<8} {:<15} {:>4} {:>3} {:<4} {:>11} {:>7} ",
            "PID", "USER", "TYPE", "PRI", "NI", "STAT", "TOKENS", "TIME"
        )
    };
    let room = width.saturating_sub(header.chars().count()).max(10);
    out.push_str(&header);
    out.push_str(if long { "PROMPT / NOTE\n" } else { "PROMPT\n" });
    for p in &list.processes {
        let user: String = user_name(p.uid, &mut names).chars().take(8).collect();
        let tokens = format!("{}/{}", p.tokens_used, p.allowance);
        let prompt = p
            .prompt
            .as_deref()
            .map_or_else(|| "<hidden>".to_string(), |t| one_line(t, usize::MAX));
        let row = if long {
            let rate = if p.cpu_ms > 0 {
                p.tokens_used as f64 * 1000.0 / p.cpu_ms as f64
            } else {
                0.0
            };
            let slot = p.slot.map_or("-".to_string(), |s| s.to_string());
            let qpos = p.queue_position.map_or("-".to_string(), |q| q.to_string());
            format!(
                "{:>6} {:<8} {:<15} {:>4} {:>3} {:<4} {:>11} {:>6} {:>7} {:>4} {:>4} {:>5} {:>6.1} ",
                p.pid.0,
                user,
                p.process_type.name(),
                p.priority,
                p.nice,
                stat(p),
                tokens,
                p.prompt_tokens,
                format_time(p.cpu_ms),
                p.context_switches,
                slot,
                qpos,
                rate
            )
        } else {
            format!(
                "{:>6} {:<8} {:<15} {:>4} {:>3} {:<4} {:>11} {:>7} ",
                p.pid.0,
                user,
                p.process_type.name(),
                p.priority,
                p.nice,
                stat(p),
                tokens,
                format_time(p.cpu_ms)
            )
        };
        out.push_str(&row);
        let mut tail = prompt;
        if long && let Some(note) = &p.note {
            tail = format!("{} [{}]", one_line(&tail, 30), note);
        }
        out.push_str(&one_line(&tail, room));
        out.push('\n');
    }
    out
}
