//! The interactive shell on a terminal: reedline with a persistent history, fish-style hints from it,
//! Tab completion, highlighting of command words, multi-line input for open quotes, emacs keys (vi
//! keys with `--vi`) and a prompt that counts jobs. Between lines it prints job notices; while a line
//! is edited, notices come through reedline's external printer, above the line.
//!
//! Keys, as in bash: Ctrl-C abandons the line and gives a new prompt below it (on an empty line
//! too), Ctrl-D on an empty line leaves (warning once if jobs are stopped). While a command runs the terminal is in
//! cooked mode, so Ctrl-C and Ctrl-Z reach the shell as SIGINT and SIGTSTP, which the foreground
//! attach loop turns into INT and STOP for the process.

use super::completer::ShellCompleter;
use super::highlighter::{CommandHighlighter, QuoteValidator};
use super::jobs::JobState;
use super::notices::LIVE_NOTICE_CAPACITY;
use super::prompt::JobCountPrompt;
use super::session::Shell;
use super::signals::TerminalKeys;
use reedline::{
    ColumnarMenu, DefaultHinter, Emacs, ExternalPrinter, FileBackedHistory, KeyCode, KeyModifiers,
    Keybindings, MenuBuilder, Reedline, ReedlineEvent, ReedlineMenu, Signal, Vi,
    default_emacs_keybindings, default_vi_insert_keybindings, default_vi_normal_keybindings,
    default_vi_visual_keybindings,
};
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// Lines of history kept in the file.
const HISTORY_LINES: usize = 10_000;

/// How long the prompt waits to learn how background jobs are doing; a kernel that does not
/// answer in time must not keep the user from typing (watchers still report changes).
const JOB_REFRESH_TIMEOUT: Duration = Duration::from_secs(1);

const COMPLETION_MENU: &str = "completion_menu";

/// The history file: `$XDG_STATE_HOME/llmsh/history`, else `~/.local/state/llmsh/history`. A
/// relative XDG_STATE_HOME is ignored, as the XDG spec asks; `None` without a home.
pub fn history_path(state_home: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    let state = state_home
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            home.map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .map(|h| h.join(".local/state"))
        })?;
    Some(state.join("llmsh").join("history"))
}

/// Runs the interactive loop; returns the shell's exit status.
pub fn run(sh: &mut Shell, runtime: &tokio::runtime::Runtime, vi: bool) -> i32 {
    let _inside = runtime.enter();
    // From here on Ctrl-C, Ctrl-Z and Ctrl-\ never kill or suspend the shell itself.
    match TerminalKeys::install() {
        Ok(keys) => sh.keys = Some(keys),
        Err(e) => eprintln!("llmsh: no job control: cannot catch Ctrl-C and Ctrl-Z: {e}"),
    }
    let printer = ExternalPrinter::<String>::new(LIVE_NOTICE_CAPACITY);
    let notifier = sh.enable_notices(printer.sender());
    let highlighter = CommandHighlighter;
    let mut editor = build(sh, runtime, vi, printer, highlighter);
    let prompt = JobCountPrompt::new(sh.shared_jobs());
    loop {
        let _ = runtime.block_on(tokio::time::timeout(JOB_REFRESH_TIMEOUT, sh.refresh_jobs()));
        let notices = notifier.begin_line();
        runtime.block_on(super::notices::report(&sh.socket, notices));
        if let Some(keys) = &mut sh.keys {
            keys.mark();
        }
        let signal = editor.read_line(&prompt);
        notifier.end_line();
        match signal {
            Ok(Signal::Success(line)) => {
                if let Err(e) = editor.sync_history() {
                    eprintln!("llmsh: cannot save history: {e}");
                }
                run_line(sh, runtime, &line);
            }
            // The editor has already moved to a new line: the next prompt goes there, as in bash.
            Ok(Signal::CtrlC) => {}
            Ok(Signal::CtrlD) => {
                if leave(sh) {
                    println!("exit");
                }
            }
            Ok(_) => {}
            Err(e) => {
                eprintln!("llmsh: terminal error: {e}");
                return 1;
            }
        }
        if let Some(status) = sh.exit_requested {
            return status;
        }
    }
}

/// Runs a line. A stopped-jobs warning from `exit` holds only until the next command, as in bash.
fn run_line(sh: &mut Shell, runtime: &tokio::runtime::Runtime, line: &str) {
    if line.trim().is_empty() {
        return;
    }
    let warned = sh.warned_stopped_jobs;
    runtime.block_on(sh.execute(line));
    if warned {
        sh.warned_stopped_jobs = false;
    }
}

/// Ctrl-D: leave unless jobs are stopped and the user has not been warned yet.
fn leave(sh: &mut Shell) -> bool {
    let stopped = sh.jobs().iter().any(|j| j.state == JobState::Stopped);
    if stopped && !sh.warned_stopped_jobs {
        sh.warned_stopped_jobs = true;
        eprintln!("There are stopped jobs.");
        return false;
    }
    sh.exit_requested = Some(sh.last_status);
    true
}

/// Builds the line editor.
fn build(
    sh: &Shell,
    runtime: &tokio::runtime::Runtime,
    vi: bool,
    printer: ExternalPrinter<String>,
    highlighter: CommandHighlighter,
) -> Reedline {
    let completer = ShellCompleter::new(
        sh.shared_jobs(),
        sh.socket.clone(),
        runtime.handle().clone(),
    );
    // The menu keeps the prompt's `$ ` rather than reedline's `| `.
    let menu = ColumnarMenu::default()
        .with_name(COMPLETION_MENU)
        .with_marker("$ ");
    let hints = DefaultHinter::default().with_style(reedline::Color::DarkGray.italic());
    let mut editor = Reedline::create()
        .with_history(history())
        .with_hinter(Box::new(hints))
        .with_completer(Box::new(completer))
        .with_menu(ReedlineMenu::EngineCompleter(Box::new(menu)))
        .with_quick_completions(true)
        .with_partial_completions(true)
        .with_highlighter(Box::new(highlighter))
        .with_validator(Box::new(QuoteValidator))
        .with_external_printer(printer)
        .use_bracketed_paste(true);
    editor = if vi {
        let mut insert = default_vi_insert_keybindings();
        add_tab(&mut insert);
        editor.with_edit_mode(Box::new(Vi::new(
            insert,
            default_vi_normal_keybindings(),
            default_vi_visual_keybindings(),
        )))
    } else {
        let mut keys = default_emacs_keybindings();
        add_tab(&mut keys);
        editor.with_edit_mode(Box::new(Emacs::new(keys)))
    };
    editor
}

/// Tab opens the completion menu, or moves through it once open.
fn add_tab(keys: &mut Keybindings) {
    keys.add_binding(
        KeyModifiers::NONE,
        KeyCode::Tab,
        ReedlineEvent::UntilFound(vec![
            ReedlineEvent::Menu(COMPLETION_MENU.to_string()),
            ReedlineEvent::MenuNext,
        ]),
    );
}

/// The history, in its file when there is one; a history that cannot be opened is kept in memory
/// for this session, with a warning.
fn history() -> Box<FileBackedHistory> {
    let in_memory = || Box::new(FileBackedHistory::new(HISTORY_LINES).unwrap_or_default());
    let Some(path) = history_path(std::env::var_os("XDG_STATE_HOME"), std::env::var_os("HOME"))
    else {
        return in_memory();
    };
    let opened = create_private(&path).and_then(|()| {
        FileBackedHistory::with_file(HISTORY_LINES, path.clone()).map_err(Into::into)
    });
    match opened {
        Ok(h) => Box::new(h),
        Err(e) => {
            eprintln!("llmsh: history not saved: {}: {e}", path.display());
            in_memory()
        }
    }
}

/// Creates the history file readable by its owner only, as bash does: prompts can hold anything.
fn create_private(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_lives_under_xdg_state_home_or_the_home_directory() {
        let os = |s: &str| Some(OsString::from(s));
        for (state, home, want) in [
            (os("/s"), os("/h"), Some("/s/llmsh/history")),
            (None, os("/h"), Some("/h/.local/state/llmsh/history")),
            (
                os("relative"),
                os("/h"),
                Some("/h/.local/state/llmsh/history"),
            ),
            (None, None, None),
            (None, os("relative"), None),
        ] {
            assert_eq!(history_path(state, home), want.map(PathBuf::from));
        }
    }
}
