//! Draws `top`: a header with the machine (slots, queue, tokens/s, switches/s, backend), the process
//! table with the selected row highlighted, and a footer with the keys or the prompt being answered.
//! Fits 80×24: the prompt column takes what the fixed columns leave.

use super::keys::Mode;
use super::model::{Model, SortKey};
use crate::proto::{Circuit, ProcessInfo};
use crate::shell::render::{format_time, stat, user_name};
use crate::shell::terminal_safe;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Row, Table, TableState};
use std::collections::HashMap;

/// The fixed columns and their widths; PROMPT takes the rest.
const COLUMNS: [(&str, u16); 11] = [
    ("PID", 6),
    ("USER", 8),
    ("STAT", 4),
    ("PRI", 4),
    ("NI", 3),
    ("TOKENS", 7),
    ("tok/s", 6),
    ("CTX", 4),
    ("SLOT", 4),
    ("TIME", 6),
    ("PROMPT", 0),
];

/// Draws the whole screen.
pub fn draw(
    frame: &mut Frame,
    model: &Model,
    mode: &Mode,
    status: &str,
    users: &mut HashMap<u32, String>,
) {
    let [header, table, footer] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    frame.render_widget(Paragraph::new(header_lines(model)), header);
    draw_table(frame, table, model, users);
    frame.render_widget(Paragraph::new(footer_line(model, mode, status)), footer);
}

fn header_lines(model: &Model) -> Vec<Line<'static>> {
    let backend = match model.backend.as_ref().map(|b| (b.circuit, b.failures)) {
        None | Some((Circuit::Closed, _)) => "up".to_string(),
        Some((Circuit::Open { retry_in_ms }, n)) => {
            format!("failing ({n}), retry in {}s", retry_in_ms.div_ceil(1000))
        }
        Some((Circuit::HalfOpen, n)) => format!("probing after {n} failures"),
    };
    let sort = match model.sort {
        None | Some(SortKey::Pid) => "PID",
        Some(SortKey::Rate) => "tok/s",
        Some(SortKey::Time) => "TIME",
        Some(SortKey::Tokens) => "TOKENS",
    };
    vec![
        Line::from(format!(
            "Slots: {}/{} in use   Queue: {}   Policy: {}   Backend: {backend}",
            model.running, model.cpus, model.queue, model.policy
        )),
        Line::from(format!(
            "Tokens/s: {:.1}   Switches/s: {:.1}   Switches: {}   Lost events: {}",
            model.tokens_per_s, model.switches_per_s, model.context_switches, model.lost
        )),
        Line::from(format!(
            "Sort: {sort}   Tree: {}   Filter: {}",
            if model.tree {
                "on (no parent links: flat)"
            } else {
                "off"
            },
            if model.filter.is_empty() {
                "-"
            } else {
                &model.filter
            }
        )),
    ]
}

fn cells(row: &ProcessInfo, rate: f64, users: &mut HashMap<u32, String>) -> Vec<String> {
    let prompt = row
        .prompt
        .as_deref()
        .map_or("?".to_string(), terminal_safe::one_line);
    vec![
        row.pid.to_string(),
        user_name(row.uid, users),
        stat(row),
        row.priority.to_string(),
        row.nice.to_string(),
        row.tokens_used.to_string(),
        format!("{rate:.1}"),
        row.context_switches.to_string(),
        row.slot.map_or("-".to_string(), |s| s.to_string()),
        format_time(row.cpu_ms),
        prompt,
    ]
}

fn draw_table(
    frame: &mut Frame,
    area: ratatui::layout::Rect,
    model: &Model,
    users: &mut HashMap<u32, String>,
) {
    let visible = model.visible();
    let selected = model
        .selected
        .and_then(|s| visible.iter().position(|r| r.pid == s));
    let rows: Vec<Row> = visible
        .iter()
        .map(|r| Row::new(cells(r, model.rate(r.pid), users)))
        .collect();
    let widths = COLUMNS.map(|(_, w)| match w {
        0 => Constraint::Min(6),
        w => Constraint::Length(w),
    });
    let header = Row::new(COLUMNS.map(|(name, _)| name))
        .style(Style::default().add_modifier(Modifier::REVERSED));
    let table = Table::new(rows, widths)
        .header(header)
        .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD));
    let mut state = TableState::default().with_selected(selected);
    frame.render_stateful_widget(table, area, &mut state);
}

fn footer_line(model: &Model, mode: &Mode, status: &str) -> Line<'static> {
    let text = match mode {
        Mode::Normal if !status.is_empty() => status.to_string(),
        Mode::Normal => {
            "↑↓ select  k kill  s stop  c cont  n/N nice+/-  P/T/M sort  f tree  / filter  q quit"
                .to_string()
        }
        Mode::Kill { choice, .. } => {
            let pid = model.selected.map_or("-".into(), |p| p.to_string());
            format!(
                "Send signal to {pid}: {} (↑↓ or number, Enter sends, Esc cancels)",
                super::keys::signal_menu(*choice)
            )
        }
        Mode::Filter { text } => format!("Filter: {text}_ (Enter keeps, Esc clears)"),
    };
    Line::from(text).style(Style::default().add_modifier(Modifier::REVERSED))
}
