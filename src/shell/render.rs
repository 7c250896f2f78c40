//! How the shell prints the kernel's tables: `ps` rows (cut to the terminal's width, CTX and swap in
//! `-l`) and, in [`memory`], the `free` table. Pure functions of the data, so tests pin the exact
//! text. Prompts and notes are shown with their control characters made visible, never interpreted.

use super::terminal_safe;

mod memory;
pub mod tree;
use crate::proto::{ProcessInfo, ProcessList};
pub use memory::{free_table, memory_summary};
use std::collections::HashMap;

/// Line width on a terminal that does not report its size.
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
    match (ok, size.ws_col) {
        (true, cols) if cols > 0 => cols as usize,
        // A terminal that does not say its size: a conventional width.
        (true, _) => DEFAULT_WIDTH,
        // Not a terminal (a pipe or file): like ps(1), do not cut lines.
        (false, _) => usize::MAX,
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

/// A waiting time as `ps` prints it: `45s`, `3m05s`, `2h10m`; below a second rounds up to `1s`.
pub fn format_eta(ms: u64) -> String {
    let secs = ms.div_ceil(1000).max(1);
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
    }
}

/// The QPOS and ETA columns: a waiting process's place in the run queue and when it likely runs.
fn queue_columns(p: &ProcessInfo) -> (String, String) {
    let qpos = p.queue_position.map_or("-".to_string(), |q| q.to_string());
    let eta = match (p.queue_position, p.eta_ms) {
        (Some(_), Some(ms)) => format_eta(ms),
        (Some(_), None) => "?".to_string(),
        (None, _) => "-".to_string(),
    };
    (qpos, eta)
}

/// The STAT column: the state letter, `<` for raised priority, `N` for lowered, `W` for swapped out
/// (its slot cache saved to disk, as old Linux ps marked a paged-out process).
pub fn stat(p: &ProcessInfo) -> String {
    let mut s = p.state.letter().to_string();
    if p.nice < 0 {
        s.push('<');
    } else if p.nice > 0 {
        s.push('N');
    }
    if p.context.as_ref().is_some_and(|c| c.swapped) {
        s.push('W');
    }
    s
}

/// The CTX column: tokens of the conversation over a slot's context (`~` when estimated, `?` when
/// the slot size is unknown).
pub fn ctx(p: &ProcessInfo) -> String {
    match &p.context {
        None => "-".to_string(),
        Some(c) => {
            let about = if c.estimated { "~" } else { "" };
            let size = c.size.map_or("?".to_string(), |n| n.to_string());
            format!("{about}{}/{size}", c.used)
        }
    }
}

/// `text` as one table cell of at most `width` characters: newlines and tabs become spaces, other
/// control characters are made visible (a prompt or a backend's note may hold escapes).
fn one_line(text: &str, width: usize) -> String {
    let flat = terminal_safe::one_line(text);
    if flat.chars().count() <= width {
        return flat;
    }
    let mut cut: String = flat.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// The last column: the prompt cut to `room`, like every row's; with a note (a finished process's
/// exit, a waiting one's reason), the note after it in brackets, the prompt keeping at least half
/// of the room.
fn prompt_and_note(prompt: &str, note: Option<&str>, room: usize) -> String {
    let Some(note) = note else {
        return one_line(prompt, room);
    };
    let note = one_line(note, usize::MAX);
    let note_room = note.chars().count().saturating_add(3); // " [" and "]"
    let prompt_room = room.saturating_sub(note_room).max(room / 2);
    one_line(&format!("{} [{note}]", one_line(prompt, prompt_room)), room)
}

/// The `ps` table: a header, then one row per process, PID first.
pub fn ps_table(list: &ProcessList, long: bool, width: usize) -> String {
    ps_table_from(list, &HashMap::new(), long, width)
}

/// [`ps_table`] where the long format ends each row with where its process came from
/// (`<llmsh>`, `<http curl/8.5>`), for the pids `origins` knows.
pub fn ps_table_from(
    list: &ProcessList,
    origins: &HashMap<crate::proto::Pid, String>,
    long: bool,
    width: usize,
) -> String {
    ps_table_on(list, origins, &[], long, width)
}

/// The backend and its own slot number of kernel slot `slot` (`b2:1`), when there are `backends`;
/// else the kernel's slot number.
pub fn slot_label(slot: u32, backends: &[crate::proto::BackendRow]) -> String {
    backends
        .iter()
        .find(|b| (b.first_slot..b.first_slot.saturating_add(b.slots)).contains(&slot))
        .map_or_else(
            || slot.to_string(),
            |b| {
                format!(
                    "{}:{}",
                    crate::shell::terminal_safe::escape(&b.name),
                    slot - b.first_slot
                )
            },
        )
}

/// [`ps_table_from`] where the long format's SLOT names the backend (`b2:1`) of each slot.
pub fn ps_table_on(
    list: &ProcessList,
    origins: &HashMap<crate::proto::Pid, String>,
    backends: &[crate::proto::BackendRow],
    long: bool,
    width: usize,
) -> String {
    let mut names = HashMap::new();
    let mut out = String::new();
    let header = if long {
        format!(
            "{:>6} {:<8} {:<15} {:>4} {:>3} {:<4} {:>11} {:>6} {:>11} {:>7} {:>4} {:>4} {:>5} {:>6} {:>6} ",
            "PID",
            "USER",
            "TYPE",
            "URG",
            "NI",
            "STAT",
            "TOKENS",
            "PTOK",
            "CTX",
            "TIME",
            "CSW",
            "SLOT",
            "QPOS",
            "ETA",
            "TOK/S"
        )
    } else {
        format!(
            "{:>6} {:<8} {:<15} {:>4} {:>3} {:<4} {:>11} {:>7} {:>5} {:>6} ",
            "PID", "USER", "TYPE", "URG", "NI", "STAT", "TOKENS", "TIME", "QPOS", "ETA"
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
        let (qpos, eta) = queue_columns(p);
        let row = if long {
            let rate = if p.cpu_ms > 0 {
                p.tokens_used as f64 * 1000.0 / p.cpu_ms as f64
            } else {
                0.0
            };
            let slot = p.slot.map_or("-".to_string(), |s| slot_label(s, backends));
            format!(
                "{:>6} {:<8} {:<15} {:>4} {:>3} {:<4} {:>11} {:>6} {:>11} {:>7} {:>4} {:>4} {:>5} {:>6} {:>6.1} ",
                p.pid.0,
                user,
                p.process_type.name(),
                p.priority,
                p.nice,
                stat(p),
                tokens,
                p.prompt_tokens,
                ctx(p),
                format_time(p.cpu_ms),
                p.context_switches,
                slot,
                qpos,
                eta,
                rate
            )
        } else {
            format!(
                "{:>6} {:<8} {:<15} {:>4} {:>3} {:<4} {:>11} {:>7} {:>5} {:>6} ",
                p.pid.0,
                user,
                p.process_type.name(),
                p.priority,
                p.nice,
                stat(p),
                tokens,
                format_time(p.cpu_ms),
                qpos,
                eta
            )
        };
        out.push_str(&row);
        let note = p.note.as_deref().filter(|_| long);
        let origin = origins
            .get(&p.pid)
            .filter(|_| long)
            .map(|o| format!(" <{}>", one_line(o, 60)));
        // The origin keeps its room; the prompt and note keep at least half of the column.
        let origin_room = origin.as_ref().map_or(0, |o| o.chars().count());
        let text_room = room.saturating_sub(origin_room).max(room / 2);
        let tail = prompt_and_note(&prompt, note, text_room) + origin.as_deref().unwrap_or("");
        out.push_str(&one_line(&tail, room));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Pid, ProcessState, ProcessType};

    fn waiting(position: Option<u32>, eta_ms: Option<u64>) -> ProcessInfo {
        ProcessInfo {
            pid: Pid(3),
            uid: u32::MAX - 7,
            process_type: ProcessType::User,
            priority: 80,
            nice: 0,
            state: ProcessState::Waiting,
            tokens_used: 64,
            allowance: 4000,
            prompt_tokens: 12,
            cpu_ms: 2000,
            age_ms: 5000,
            prompt: Some("hi".into()),
            context_switches: 2,
            slot: None,
            queue_position: position,
            exit: None,
            note: None,
            eta_ms,
            context: None,
        }
    }

    #[test]
    fn eta_prints_seconds_minutes_and_hours() {
        assert_eq!(format_eta(0), "1s");
        assert_eq!(format_eta(1200), "2s");
        assert_eq!(format_eta(185_000), "3m05s");
        assert_eq!(format_eta(7_800_000), "2h10m");
    }

    #[test]
    fn a_waiting_row_shows_its_queue_place_and_eta_and_long_adds_switches_and_rate() {
        let list = ProcessList {
            processes: vec![waiting(Some(2), Some(4500)), waiting(Some(1), None)],
            cpus: 1,
            policy: "priority".into(),
        };
        let short = ps_table(&list, false, 200);
        let header: Vec<_> = short.lines().next().unwrap().split_whitespace().collect();
        assert_eq!(&header[8..], ["QPOS", "ETA", "PROMPT"]);
        let row: Vec<_> = short.lines().nth(1).unwrap().split_whitespace().collect();
        assert_eq!(&row[5..], ["Q", "64/4000", "0:02", "2", "5s", "hi"]);
        let unknown: Vec<_> = short.lines().nth(2).unwrap().split_whitespace().collect();
        assert_eq!(unknown[9], "?", "no estimate before any run");
        let long = ps_table(&list, true, 200);
        let row: Vec<_> = long.lines().nth(1).unwrap().split_whitespace().collect();
        assert_eq!(&row[8..15], ["-", "0:02", "2", "-", "2", "5s", "32.0"]);
    }

    #[test]
    fn ctx_shows_used_over_the_slot_and_marks_estimates_and_swapped_processes() {
        let mut row = waiting(Some(1), None);
        row.context = Some(crate::proto::ContextUse {
            used: 300,
            size: Some(2048),
            estimated: true,
            swapped: true,
        });
        assert_eq!((ctx(&row), stat(&row)), ("~300/2048".into(), "QW".into()));
        let list = ProcessList {
            processes: vec![row],
            cpus: 1,
            policy: "priority".into(),
        };
        let long = ps_table(&list, true, 300);
        let header: Vec<_> = long.lines().next().unwrap().split_whitespace().collect();
        assert_eq!(header[8], "CTX");
        let row: Vec<_> = long.lines().nth(1).unwrap().split_whitespace().collect();
        assert_eq!(row[8], "~300/2048");
    }

    #[test]
    fn a_finished_row_shows_its_prompt_to_the_column_then_its_note() {
        let mut done = waiting(None, None);
        done.state = ProcessState::Zombie;
        done.prompt = Some("Write a long story about a lighthouse keeper and the sea".into());
        done.note = Some("stopped at its token allowance (4000)".into());
        let list = ProcessList {
            processes: vec![waiting(None, None), done],
            cpus: 1,
            policy: "priority".into(),
        };
        let table = ps_table(&list, true, 230);
        let row = table.lines().nth(2).unwrap();
        assert!(
            row.ends_with(
                "Write a long story about a lighthouse keeper and the sea \
                 [stopped at its token allowance (4000)]"
            ),
            "{row}"
        );
        let narrow = ps_table(&list, true, 150);
        for line in narrow.lines() {
            assert!(line.chars().count() <= 150, "{line}");
        }
        let row = narrow.lines().nth(2).unwrap();
        assert!(
            row.contains("Write a long") && row.contains("… [stopped"),
            "{row}"
        );
    }

    #[test]
    fn a_row_with_a_note_and_an_origin_keeps_the_origin_in_view() {
        let mut done = waiting(None, None);
        done.state = ProcessState::Zombie;
        done.prompt = Some("Write a long story about a lighthouse keeper and the sea".into());
        done.note = Some("stopped at its token allowance (4000)".into());
        let pid = done.pid;
        let list = ProcessList {
            processes: vec![done],
            cpus: 1,
            policy: "priority".into(),
        };
        let origins = HashMap::from([(pid, "http curl/8.5".to_string())]);
        let table = ps_table_from(&list, &origins, true, 170);
        let row = table.lines().nth(1).unwrap();
        assert!(row.chars().count() <= 170, "{row}");
        assert!(row.ends_with(" <http curl/8.5>"), "{row}");
        assert!(
            row.contains("Write a long") && row.contains("[stopped"),
            "{row}"
        );
    }

    #[test]
    fn the_priority_column_says_which_way_it_reads() {
        let list = ProcessList {
            processes: vec![],
            cpus: 1,
            policy: "priority".into(),
        };
        for long in [false, true] {
            let header = ps_table(&list, long, 200);
            assert!(header.split_whitespace().any(|h| h == "URG"), "{header}");
            assert!(!header.split_whitespace().any(|h| h == "PRI"), "{header}");
        }
    }

    #[test]
    fn escapes_in_a_prompt_or_a_note_are_shown_not_interpreted() {
        let mut row = waiting(Some(1), None);
        row.prompt = Some("a\x1b[2Jb\u{9b}c\nd".into());
        row.note = Some("backend: \x1b]52;c;eA==\x07".into());
        let list = ProcessList {
            processes: vec![row],
            cpus: 1,
            policy: "priority".into(),
        };
        for long in [false, true] {
            let table = ps_table(&list, long, 300);
            assert!(!table.contains(['\x1b', '\x07', '\u{9b}']), "{table:?}");
            assert!(table.contains("a^[[2Jb<U+009B>c d"), "{table}");
            assert_eq!(table.lines().count(), 2, "{table}");
        }
        assert!(ps_table(&list, true, 300).contains("[backend: ^[]52;c;eA==^G]"));
    }
}
