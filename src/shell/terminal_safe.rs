//! Text from a model or a backend made safe to show on a terminal. Model output and backend error
//! text are written by someone else: an escape sequence in them could clear the screen, retitle the
//! window, write the clipboard (OSC 52) or move the cursor over what the shell printed. So before
//! such text reaches a terminal, every control character other than newline and tab is shown as
//! visible text, never interpreted:
//!
//! - C0 controls and DEL in caret notation, as `cat -v` and less(1) show them: ESC is `^[`, BEL `^G`,
//!   CR `^M`, backspace `^H`, DEL `^?`. So `ESC [ 2 J` reads `^[[2J`.
//! - C1 controls (U+0080..U+009F, which some terminals obey as 8-bit escapes: U+009B is a CSI) as
//!   `<U+009B>`, as less(1) shows a character it will not print.
//! - Everything else, multi-byte UTF-8 included, is kept as it is.
//!
//! A carriage return is shown too, even before a newline: it is the character that lets a stream
//! overwrite a line already shown.
//!
//! Where it applies: output streamed to the foreground and printed by `cat` is escaped only when
//! stdout is a terminal. Sent to a pipe or a file it is written byte for byte, as cat(1) does, so
//! `llmsh -c 'cat 12' > answer.txt` keeps the exact answer. Diagnostics (error messages, notes, the
//! `ps` table) are always escaped: they are meant to be read, and a log read later with cat(1)
//! is a terminal again.

use std::borrow::Cow;
use std::io::{IsTerminal, Write};
use std::sync::OnceLock;

/// Whether `c` is shown escaped: every control character except newline and tab.
fn needs_escape(c: char) -> bool {
    c.is_control() && c != '\n' && c != '\t'
}

/// `text` with every control character other than newline and tab made visible (see the module
/// documentation for the notation). Borrows when there is nothing to escape, the usual case.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        push_visible(&mut out, c);
    }
    Cow::Owned(out)
}

/// Appends `c` to `out`, in its visible form if it is a control character other than newline or tab.
fn push_visible(out: &mut String, c: char) {
    let code = u32::from(c);
    match c {
        _ if !needs_escape(c) => out.push(c),
        // C0: `^` and the character 64 places up (ESC 0x1B is `^[`).
        '\0'..='\x1f' => {
            out.push('^');
            out.push(char::from_u32(code + 0x40).unwrap_or('?'));
        }
        '\x7f' => out.push_str("^?"),
        _ => out.push_str(&format!("<U+{code:04X}>")),
    }
}

/// `text` on one line, for a table cell: newlines and tabs become spaces, other control
/// characters are made visible as [`escape`] does.
pub fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\t' => out.push(' '),
            c => push_visible(&mut out, c),
        }
    }
    out
}

/// Whether stdout is a terminal, asked once: it does not change while the shell runs.
fn stdout_is_terminal() -> bool {
    static IS_TERMINAL: OnceLock<bool> = OnceLock::new();
    *IS_TERMINAL.get_or_init(|| std::io::stdout().is_terminal())
}

/// What to write to stdout for a process's output: escaped on a terminal, the bytes as they are
/// on a pipe or a file.
pub fn for_stdout(text: &str) -> Cow<'_, str> {
    if stdout_is_terminal() {
        escape(text)
    } else {
        Cow::Borrowed(text)
    }
}

/// Writes a process's output to stdout at once (escaped on a terminal); false when stdout is gone
/// (a closed pipe).
pub fn write_output(text: &str) -> bool {
    let mut out = std::io::stdout().lock();
    out.write_all(for_stdout(text).as_bytes())
        .and_then(|()| out.flush())
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_made_visible_and_everything_else_is_kept() {
        let table = [
            ("clear screen", "\x1b[2J", "^[[2J"),
            ("colour", "\x1b[31mred\x1b[0m", "^[[31mred^[[0m"),
            (
                "OSC 52 clipboard write",
                "\x1b]52;c;cm0gLXJmIH4=\x07",
                "^[]52;c;cm0gLXJmIH4=^G",
            ),
            ("OSC ended by ST", "\x1b]0;title\x1b\\", "^[]0;title^[\\"),
            ("bell", "ding\x07", "ding^G"),
            ("carriage return", "safe\rEVIL", "safe^MEVIL"),
            ("CR LF", "line\r\n", "line^M\n"),
            ("backspace", "abc\x08\x08x", "abc^H^Hx"),
            ("NUL", "a\0b", "a^@b"),
            ("DEL", "a\x7fb", "a^?b"),
            ("C1 CSI", "\u{9b}2J", "<U+009B>2J"),
            ("C1 first and last", "\u{80}\u{9f}", "<U+0080><U+009F>"),
            ("newline and tab kept", "a\tb\nc\n", "a\tb\nc\n"),
            (
                "multi-byte UTF-8 kept",
                "héllo → 世界 🦀",
                "héllo → 世界 🦀",
            ),
            ("NBSP just above C1 kept", "a\u{a0}b", "a\u{a0}b"),
            ("empty", "", ""),
        ];
        for (what, input, want) in table {
            assert_eq!(escape(input), want, "{what}");
        }
    }

    #[test]
    fn text_without_controls_is_borrowed_not_copied() {
        assert!(matches!(escape("t0 t1 t2\n"), Cow::Borrowed(_)));
        assert!(matches!(escape("\x1b"), Cow::Owned(_)));
    }

    #[test]
    fn a_table_cell_is_one_line_with_controls_visible() {
        let table = [
            ("newline and tab become spaces", "a\nb\tc", "a b c"),
            ("escape visible", "x\x1b[2Jy", "x^[[2Jy"),
            ("C1 visible", "\u{85}", "<U+0085>"),
            ("UTF-8 kept", "ça va", "ça va"),
        ];
        for (what, input, want) in table {
            assert_eq!(one_line(input), want, "{what}");
        }
    }
}
