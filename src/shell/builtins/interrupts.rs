//! `interrupts`: the kernel's interrupt lines and their counters, like /proc/interrupts: how often each
//! was raised, how many raises were coalesced into handlers already waiting, how many handler
//! processes started, how many wait now and the limit, the handler's process type, and what raises it.

use super::{Help, usage_error};
use crate::proto::{InterruptKind, InterruptTable, InterruptsRequest, Request, Response};
use crate::shell::session::Shell;

pub const HELP: Help = Help {
    name: "interrupts",
    usage: "interrupts",
    summary: "show the interrupt lines and their counters",
};

pub async fn run(sh: &mut Shell, args: &[String]) -> i32 {
    if !args.is_empty() {
        return usage_error(sh, &HELP, "too many arguments");
    }
    match sh.call(Request::Interrupts(InterruptsRequest {})).await {
        Ok(Response::InterruptTable(table)) => {
            print!("{}", format_table(&table));
            0
        }
        Ok(other) => sh.unexpected("interrupts", &other),
        Err(e) => {
            sh.complain("interrupts", e);
            1
        }
    }
}

/// The table as printed: a header, one row per line, then where SIGUSR1's messages wait.
pub fn format_table(table: &InterruptTable) -> String {
    let mut out = format!(
        "{:<10} {:>9} {:>9} {:>9} {:>7} {:>5}  {:<13} {}\n",
        "", "RAISED", "COALESCED", "HANDLED", "WAITING", "LIMIT", "HANDLER", "SOURCE"
    );
    for line in &table.lines {
        let (name, source) = match line.kind {
            InterruptKind::UserInput => ("USER_INPUT", "query".to_string()),
            InterruptKind::System => ("SYSTEM", "SIGUSR1, interrupt system".to_string()),
            InterruptKind::Timer => {
                let timer = match table.timer_period_ms {
                    Some(ms) => format!(", interval timer every {}", format_period(ms)),
                    None => String::new(),
                };
                ("TIMER", format!("SIGALRM{timer}, interrupt timer"))
            }
        };
        let (waiting, limit) = match line.max_waiting {
            Some(max) => (line.waiting.to_string(), max.to_string()),
            None => ("-".to_string(), "-".to_string()),
        };
        out.push_str(&format!(
            "{:<10} {:>9} {:>9} {:>9} {:>7} {:>5}  {:<13} {}\n",
            name,
            line.raised,
            line.coalesced,
            line.handled,
            waiting,
            limit,
            line.handler_type.name(),
            source
        ));
    }
    let plural = if table.spooled == 1 { "" } else { "s" };
    out.push_str(&format!(
        "spool: {} ({} message{plural} waiting)\n",
        table.spool_dir, table.spooled
    ));
    out
}

fn format_period(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{}ms", ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{InterruptLine, ProcessType};

    fn line(kind: InterruptKind, counts: (u64, u64, u64), max: Option<u32>) -> InterruptLine {
        InterruptLine {
            kind,
            raised: counts.0,
            coalesced: counts.1,
            handled: counts.2,
            waiting: max.map_or(0, |m| m.min(2)),
            max_waiting: max,
            handler_type: match kind {
                InterruptKind::UserInput => ProcessType::User,
                InterruptKind::Timer => ProcessType::Housekeeping,
                InterruptKind::System => ProcessType::System,
            },
        }
    }

    #[test]
    fn table_reads_like_proc_interrupts() {
        let table = InterruptTable {
            lines: vec![
                line(InterruptKind::UserInput, (3, 0, 3), None),
                line(InterruptKind::Timer, (12, 2, 10), Some(4)),
                line(InterruptKind::System, (1000, 995, 5), Some(4)),
            ],
            timer_period_ms: Some(60_000),
            spool_dir: "/run/user/1000/llmkernel/interrupts".into(),
            spooled: 1,
        };
        let want = concat!(
            "              RAISED COALESCED   HANDLED WAITING LIMIT  HANDLER       SOURCE\n",
            "USER_INPUT         3         0         3       -     -  USER          query\n",
            "TIMER             12         2        10       2     4  HOUSEKEEPING  ",
            "SIGALRM, interval timer every 60s, interrupt timer\n",
            "SYSTEM          1000       995         5       2     4  SYSTEM        SIGUSR1, interrupt system\n",
            "spool: /run/user/1000/llmkernel/interrupts (1 message waiting)\n",
        );
        assert_eq!(format_table(&table), want);
    }
}
