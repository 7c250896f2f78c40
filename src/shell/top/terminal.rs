//! The terminal while `top` owns it: raw mode and the alternate screen, given back on every way out.
//! Dropping the [`Screen`] restores it (normal exit, error, `?`); a panic hook restores it before the
//! panic message prints; SIGTERM restores it and ends the shell with 143, as the signal's default
//! action would have, without leaving the terminal raw.

use ratatui::crossterm::{cursor, execute, terminal};
use std::io::Write;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether `top` has the terminal now (the hooks restore it only then).
static ACTIVE: AtomicBool = AtomicBool::new(false);
static HOOKS: Once = Once::new();

/// The terminal taken over; restored on drop.
pub struct Screen {
    _private: (),
}

impl Screen {
    /// Enters raw mode and the alternate screen, hiding the cursor.
    pub fn enter() -> std::io::Result<Screen> {
        install_hooks();
        terminal::enable_raw_mode()?;
        ACTIVE.store(true, Ordering::SeqCst);
        let screen = Screen { _private: () };
        execute!(
            std::io::stdout(),
            terminal::EnterAlternateScreen,
            cursor::Hide
        )?;
        Ok(screen)
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

/// Gives the terminal back if `top` has it: idempotent, and safe from a panic hook.
pub fn restore() {
    if !ACTIVE.swap(false, Ordering::SeqCst) {
        return;
    }
    let mut out = std::io::stdout();
    let _ = execute!(out, terminal::LeaveAlternateScreen, cursor::Show);
    let _ = terminal::disable_raw_mode();
    let _ = out.flush();
}

/// Once per shell: the panic hook, and a SIGTERM listener (a signal handler, once installed, stays
/// for the life of the process, so it keeps SIGTERM's default meaning: the shell ends with 143).
fn install_hooks() {
    HOOKS.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::spawn(async move {
                term.recv().await;
                restore();
                std::process::exit(128 + nix::libc::SIGTERM);
            });
        }
    });
}
