//! `top`'s keys, as htop's: arrows select, `k` kill (asks for the signal), `s`/`c` stop/continue,
//! `n`/`N` nice +1/-1, `P`/`T`/`M` sort, `f` tree, `/` filter, `q` quit. A key either changes the
//! view or asks for an [`Action`] on the kernel.

use super::model::{Model, SortKey};
use crate::proto::{Pid, Signal};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// What the keys are doing now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    #[default]
    Normal,
    /// Choosing the signal for `k`: an index into [`Signal::ALL`], and digits typed so far.
    Kill { choice: usize, typed: String },
    /// Typing the filter.
    Filter { text: String },
}

/// Something to ask the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Signal(Pid, Signal),
    /// Set the niceness of the process to this value.
    Renice(Pid, i8),
    Quit,
}

/// The signal `k` offers first, as htop does.
fn default_choice() -> usize {
    Signal::ALL
        .iter()
        .position(|s| *s == Signal::Term)
        .unwrap_or(0)
}

/// The signal list of the kill prompt, the chosen one in brackets.
pub fn signal_menu(choice: usize) -> String {
    let names: Vec<String> = Signal::ALL
        .iter()
        .enumerate()
        .map(|(i, s)| match i == choice {
            true => format!("[{} {}]", s.number(), s.name()),
            false => format!("{} {}", s.number(), s.name()),
        })
        .collect();
    names.join(" ")
}

/// Handles one key: changes `mode` and `model`, and returns what to ask the kernel, if anything.
pub fn handle(key: KeyEvent, mode: &mut Mode, model: &mut Model) -> Option<Action> {
    if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
        return Some(Action::Quit);
    }
    match mode {
        Mode::Normal => normal(key.code, mode, model),
        Mode::Kill { choice, typed } => {
            let (choice, typed) = (*choice, typed.clone());
            kill_prompt(key.code, choice, typed, mode, model)
        }
        Mode::Filter { text } => {
            match key.code {
                KeyCode::Char(c) => text.push(c),
                KeyCode::Backspace => {
                    text.pop();
                }
                KeyCode::Enter => *mode = Mode::Normal,
                KeyCode::Esc => {
                    text.clear();
                    *mode = Mode::Normal;
                }
                _ => {}
            }
            if let Mode::Filter { text } = mode {
                model.filter = text.clone();
            } else if key.code == KeyCode::Esc {
                model.filter.clear();
            }
            model.keep_selection();
            None
        }
    }
}

fn normal(code: KeyCode, mode: &mut Mode, model: &mut Model) -> Option<Action> {
    let selected = model.selected_row().map(|r| (r.pid, r.nice));
    match code {
        KeyCode::Up => model.move_selection(-1),
        KeyCode::Down => model.move_selection(1),
        KeyCode::PageUp => model.move_selection(-10),
        KeyCode::PageDown => model.move_selection(10),
        KeyCode::Home => model.move_selection(isize::MIN / 2),
        KeyCode::End => model.move_selection(isize::MAX / 2),
        KeyCode::Char('q') | KeyCode::F(10) => return Some(Action::Quit),
        KeyCode::Char('k') | KeyCode::F(9) if selected.is_some() => {
            *mode = Mode::Kill {
                choice: default_choice(),
                typed: String::new(),
            }
        }
        KeyCode::Char('s') => return selected.map(|(pid, _)| Action::Signal(pid, Signal::Stop)),
        KeyCode::Char('c') => return selected.map(|(pid, _)| Action::Signal(pid, Signal::Cont)),
        KeyCode::Char('n') | KeyCode::F(8) => {
            return selected.map(|(pid, nice)| Action::Renice(pid, nice.saturating_add(1).min(19)));
        }
        KeyCode::Char('N') | KeyCode::F(7) => {
            return selected
                .map(|(pid, nice)| Action::Renice(pid, nice.saturating_sub(1).max(-20)));
        }
        KeyCode::Char('P') => model.sort = Some(SortKey::Rate),
        KeyCode::Char('T') => model.sort = Some(SortKey::Time),
        KeyCode::Char('M') => model.sort = Some(SortKey::Tokens),
        KeyCode::Char('f') | KeyCode::F(5) => model.tree = !model.tree,
        KeyCode::Char('/') | KeyCode::F(3) => {
            *mode = Mode::Filter {
                text: model.filter.clone(),
            }
        }
        _ => {}
    }
    None
}

fn kill_prompt(
    code: KeyCode,
    choice: usize,
    mut typed: String,
    mode: &mut Mode,
    model: &Model,
) -> Option<Action> {
    let last = Signal::ALL.len() - 1;
    let choice = match code {
        KeyCode::Esc | KeyCode::Char('q') => {
            *mode = Mode::Normal;
            return None;
        }
        KeyCode::Enter => {
            *mode = Mode::Normal;
            let signal = Signal::ALL.get(choice).copied()?;
            return model.selected.map(|pid| Action::Signal(pid, signal));
        }
        KeyCode::Up => choice.saturating_sub(1),
        KeyCode::Down => (choice + 1).min(last),
        KeyCode::Char(d) if d.is_ascii_digit() => {
            typed.push(d);
            if Signal::parse(&typed).is_none() {
                typed = d.to_string();
            }
            Signal::parse(&typed)
                .and_then(|s| Signal::ALL.iter().position(|a| *a == s))
                .unwrap_or(choice)
        }
        _ => choice,
    };
    *mode = Mode::Kill { choice, typed };
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Event, ProcessInfo, ProcessState, ProcessType};

    fn press(code: KeyCode, mode: &mut Mode, model: &mut Model) -> Option<Action> {
        handle(KeyEvent::new(code, KeyModifiers::NONE), mode, model)
    }

    fn model_with(pid: u64) -> Model {
        let mut m = Model::default();
        m.apply(Event::Created(ProcessInfo {
            pid: Pid(pid),
            uid: 1,
            process_type: ProcessType::User,
            priority: 80,
            nice: 3,
            state: ProcessState::Running,
            tokens_used: 0,
            allowance: 10,
            prompt_tokens: 0,
            cpu_ms: 0,
            age_ms: 0,
            prompt: None,
            context_switches: 0,
            slot: Some(0),
            queue_position: None,
            exit: None,
            note: None,
            eta_ms: None,
            context: None,
        }));
        m
    }

    #[test]
    fn k_asks_for_the_signal_and_a_number_picks_it() {
        let (mut mode, mut m) = (Mode::Normal, model_with(4));
        assert_eq!(press(KeyCode::Char('k'), &mut mode, &mut m), None);
        press(KeyCode::Char('9'), &mut mode, &mut m);
        assert_eq!(
            press(KeyCode::Enter, &mut mode, &mut m),
            Some(Action::Signal(Pid(4), Signal::Kill))
        );
        assert_eq!(mode, Mode::Normal);
        press(KeyCode::Char('k'), &mut mode, &mut m);
        press(KeyCode::Char('1'), &mut mode, &mut m);
        press(KeyCode::Char('5'), &mut mode, &mut m);
        assert_eq!(
            press(KeyCode::Enter, &mut mode, &mut m),
            Some(Action::Signal(Pid(4), Signal::Term))
        );
    }

    #[test]
    fn stop_continue_renice_and_quit() {
        let (mut mode, mut m) = (Mode::Normal, model_with(4));
        let mut p = |c| press(KeyCode::Char(c), &mut mode, &mut m);
        assert_eq!(p('s'), Some(Action::Signal(Pid(4), Signal::Stop)));
        assert_eq!(p('c'), Some(Action::Signal(Pid(4), Signal::Cont)));
        assert_eq!(p('n'), Some(Action::Renice(Pid(4), 4)));
        assert_eq!(p('N'), Some(Action::Renice(Pid(4), 2)));
        assert_eq!(p('q'), Some(Action::Quit));
    }
}
