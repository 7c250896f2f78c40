//! `clear [-x]`: clear the terminal as `clear(1)` does: cursor home, erase the screen, and (unless
//! `-x`) the scrollback. Off a terminal it writes nothing, so a script's output stays clean text.

use super::{Help, usage_error};
use crate::shell::session::Shell;
use std::io::{IsTerminal, Write};

pub const HELP: Help = Help {
    name: "clear",
    usage: "clear [-x]",
    summary: "clear the terminal screen (-x keeps the scrollback)",
};

/// Cursor home, then erase the whole screen (what `clear(1)` writes for xterm and its kin).
const CLEAR_SCREEN: &str = "\x1b[H\x1b[2J";
/// Erase the scrollback too (xterm's E3 capability, which `clear(1)` writes unless `-x`).
const CLEAR_SCROLLBACK: &str = "\x1b[3J";

/// What `clear` writes: the screen, and the scrollback unless it is kept.
pub fn sequence(keep_scrollback: bool) -> String {
    if keep_scrollback {
        CLEAR_SCREEN.to_string()
    } else {
        format!("{CLEAR_SCREEN}{CLEAR_SCROLLBACK}")
    }
}

pub fn run(sh: &mut Shell, args: &[String]) -> i32 {
    let keep_scrollback = match args.first().map(String::as_str) {
        None => false,
        Some("-x") if args.len() == 1 => true,
        Some(other) => return usage_error(sh, &HELP, format!("{other}: invalid option")),
    };
    // Written as it is: these escapes are the point (model output goes through the terminal-safe
    // writer instead).
    let mut out = std::io::stdout();
    if out.is_terminal() {
        let _ = out
            .write_all(sequence(keep_scrollback).as_bytes())
            .and_then(|()| out.flush());
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clear_writes_what_clear_1_writes_for_xterm() {
        assert_eq!(sequence(false), "\x1b[H\x1b[2J\x1b[3J");
        assert_eq!(sequence(true), "\x1b[H\x1b[2J");
    }
}
