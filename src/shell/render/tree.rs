//! Parents and groups in the `ps` table: `ps -l` shows PPID and PGID as its last columns before
//! the prompt, and `ps f` (the forest) lists each process under the one that feeds it, its prompt
//! indented with `\_` as procps draws it. Both work on the rendered table, so the columns before
//! them stay where [`super`] draws them (and where scripts find them): PID is always the first
//! column, six wide, and the prompt starts where the header says `PROMPT`.

use crate::proto::{Pid, ProcessInfo, ProcessLink};
use std::collections::HashMap;

/// Characters the PPID and PGID columns add to a row.
pub const LINK_COLUMNS_WIDTH: usize = 14;

/// Width of the PID column that starts every row.
const PID_WIDTH: usize = 6;

/// Inserts PPID and PGID before the prompt of every line of `table` (header first).
pub fn with_link_columns(table: &str, links: &HashMap<Pid, ProcessLink>) -> String {
    let mut out = String::with_capacity(table.len() + table.lines().count() * LINK_COLUMNS_WIDTH);
    let at = prompt_column(table);
    for (i, line) in table.lines().enumerate() {
        let split = line.char_indices().nth(at).map_or(line.len(), |(b, _)| b);
        let (columns, prompt) = line.split_at(split);
        let added = if i == 0 {
            format!("{:>6} {:>6} ", "PPID", "PGID")
        } else {
            let pid: String = line.chars().take(PID_WIDTH).collect();
            let link = pid.trim().parse().ok().and_then(|p| links.get(&Pid(p)));
            let ppid = link
                .and_then(|l| l.ppid)
                .map_or("-".into(), |p| p.0.to_string());
            let pgid = link.map_or("-".into(), |l| l.pgid.0.to_string());
            format!("{ppid:>6} {pgid:>6} ")
        };
        out.push_str(columns);
        out.push_str(&added);
        out.push_str(prompt);
        out.push('\n');
    }
    out
}

/// The character where the prompt column starts: where the header says `PROMPT`.
fn prompt_column(table: &str) -> usize {
    let header = table.lines().next().unwrap_or_default();
    header
        .find("PROMPT")
        .map_or(header.chars().count(), |byte| {
            header[..byte].chars().count()
        })
}

/// The processes in forest order (each after its parent, depth-first, pids in order among
/// siblings) with their depth. A process whose parent is not listed is a root.
pub fn forest(processes: &[ProcessInfo], links: &HashMap<Pid, ProcessLink>) -> Vec<(usize, usize)> {
    let index: HashMap<Pid, usize> = processes
        .iter()
        .enumerate()
        .map(|(i, p)| (p.pid, i))
        .collect();
    let parent = |p: &ProcessInfo| {
        links
            .get(&p.pid)
            .and_then(|l| l.ppid)
            .filter(|pp| index.contains_key(pp) && *pp != p.pid)
    };
    let mut children: HashMap<Pid, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (i, p) in processes.iter().enumerate() {
        match parent(p) {
            Some(pp) => children.entry(pp).or_default().push(i),
            None => roots.push(i),
        }
    }
    let mut order = Vec::with_capacity(processes.len());
    let mut stack: Vec<(usize, usize)> = roots.into_iter().rev().map(|i| (i, 0)).collect();
    while let Some((i, depth)) = stack.pop() {
        // A cycle cannot come from the kernel, but a row is never listed twice.
        if order.iter().any(|(j, _)| *j == i) {
            continue;
        }
        order.push((i, depth));
        if let Some(kids) = children.get(&processes[i].pid) {
            stack.extend(kids.iter().rev().map(|k| (*k, depth + 1)));
        }
    }
    order
}

/// Indents the prompt column of each row (after the header) by its depth, as `ps f` does.
pub fn indent_prompts(table: &str, depths: &[usize]) -> String {
    let at = prompt_column(table);
    let mut lines = table.lines();
    let Some(header) = lines.next() else {
        return String::new();
    };
    let mut out = format!("{header}\n");
    for (line, depth) in lines.zip(depths.iter().copied().chain(std::iter::repeat(0))) {
        let split = line.char_indices().nth(at).map_or(line.len(), |(b, _)| b);
        let (columns, prompt) = line.split_at(split);
        out.push_str(columns);
        if depth > 0 {
            out.push_str(&"    ".repeat(depth - 1));
            out.push_str(" \\_ ");
        }
        out.push_str(prompt);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(pid: u64, ppid: Option<u64>, pgid: u64) -> (Pid, ProcessLink) {
        let link = ProcessLink {
            pid: Pid(pid),
            ppid: ppid.map(Pid),
            pgid: Pid(pgid),
            blocked_on: None,
        };
        (Pid(pid), link)
    }

    #[test]
    fn link_columns_come_before_the_prompt_and_unknown_ones_are_dashes() {
        let table = "   PID USER PROMPT\n     7 me   a\n     8 me   b\n";
        let links = HashMap::from([link(8, Some(7), 7)]);
        assert_eq!(
            with_link_columns(table, &links),
            "   PID USER   PPID   PGID PROMPT\n     7 me        -      - a\n     8 me        7      7 b\n"
        );
    }

    #[test]
    fn the_forest_puts_each_reader_under_its_upstream_with_its_prompt_indented() {
        let table = "   PID PROMPT\n     1 a\n     2 b\n     3 c\n     4 d\n";
        let links = HashMap::from([link(2, Some(1), 1), link(3, Some(2), 1)]);
        let rows: Vec<ProcessInfo> = Vec::new();
        assert!(forest(&rows, &links).is_empty());
        let depths = [0, 1, 2, 0];
        assert_eq!(
            indent_prompts(table, &depths),
            "   PID PROMPT\n     1 a\n     2  \\_ b\n     3      \\_ c\n     4 d\n"
        );
    }
}
