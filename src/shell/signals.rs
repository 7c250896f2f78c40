//! Ctrl-C and Ctrl-Z on the terminal, as the interactive shell sees them. While a line is edited the
//! terminal is raw and these are keys; while a command runs it is cooked and they arrive as SIGINT
//! and SIGTSTP. The shell counts them from startup, and each command line starts from a mark taken
//! before the line was read, so a press that lands between Enter and the moment a builtin starts
//! listening still counts for that command. Otherwise (`-c`, scripts) each wait listens for itself.

use nix::sys::termios::{LocalFlags, SetArg, Termios, tcgetattr, tcsetattr};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;

/// Presses of one key, counted since the shell started.
#[derive(Clone)]
pub struct KeyPresses {
    count: watch::Receiver<u64>,
}

/// Ctrl-C and Ctrl-Z presses of an interactive shell.
#[derive(Clone)]
pub struct TerminalKeys {
    pub ctrl_c: KeyPresses,
    pub ctrl_z: KeyPresses,
}

impl TerminalKeys {
    /// Starts counting SIGINT and SIGTSTP on the current runtime; from now on neither stops or
    /// kills the shell. SIGQUIT (Ctrl-\) is ignored, as bash does.
    pub fn install() -> std::io::Result<TerminalKeys> {
        let quit = signal(SignalKind::quit())?;
        tokio::spawn(async move {
            let mut quit = quit;
            while quit.recv().await.is_some() {}
        });
        Ok(TerminalKeys {
            ctrl_c: KeyPresses::count(signal(SignalKind::interrupt())?),
            ctrl_z: KeyPresses::count(signal(SignalKind::from_raw(nix::libc::SIGTSTP))?),
        })
    }

    /// A new command line starts: earlier presses do not count for it.
    pub fn mark(&mut self) {
        self.ctrl_c.count.borrow_and_update();
        self.ctrl_z.count.borrow_and_update();
    }
}

impl KeyPresses {
    fn count(mut signal: Signal) -> KeyPresses {
        let (tx, count) = watch::channel(0);
        tokio::spawn(async move {
            while signal.recv().await.is_some() {
                tx.send_modify(|n| *n += 1);
            }
        });
        KeyPresses { count }
    }

    /// Resolves at the next press since the mark (or since the last press this copy saw).
    pub async fn pressed(&mut self) {
        if self.count.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Where a command waits for a key: the shell's counters, or a signal listener of its own.
pub enum KeyWatch {
    Counted(KeyPresses),
    Listening(Signal),
    Never,
}

impl KeyWatch {
    /// Resolves at the next press.
    pub async fn pressed(&mut self) {
        match self {
            KeyWatch::Counted(presses) => presses.pressed().await,
            KeyWatch::Listening(signal) => {
                if signal.recv().await.is_none() {
                    std::future::pending::<()>().await;
                }
            }
            KeyWatch::Never => std::future::pending().await,
        }
    }
}

/// Whether the terminal on standard input echoes Ctrl-C and Ctrl-Z as `^C` and `^Z` (ECHO and
/// ECHOCTL, as terminals are set up by default), leaving the cursor after the echo.
pub fn echoes_control_keys() -> bool {
    tcgetattr(std::io::stdin()).is_ok_and(|t| {
        t.local_flags
            .contains(LocalFlags::ECHO | LocalFlags::ECHOCTL)
    })
}

/// Keeps the terminal from throwing away output when Ctrl-C or Ctrl-Z is pressed (POSIX flushes
/// the output queue on INTR and SUSP unless NOFLSH is set). The attach loop counts what it has
/// shown so that `fg` prints only the rest; a token written just before the key and then flushed
/// would otherwise never be seen. Restores the terminal's flags when dropped.
pub struct NoFlushGuard {
    saved: Option<Termios>,
}

impl NoFlushGuard {
    /// Sets NOFLSH on the terminal on standard input, if there is one.
    pub fn set() -> NoFlushGuard {
        let stdin = std::io::stdin();
        let Ok(saved) = tcgetattr(&stdin) else {
            return NoFlushGuard { saved: None };
        };
        let mut quiet = saved.clone();
        quiet.local_flags.insert(LocalFlags::NOFLSH);
        let set = tcsetattr(&stdin, SetArg::TCSANOW, &quiet).is_ok();
        NoFlushGuard {
            saved: set.then_some(saved),
        }
    }
}

impl Drop for NoFlushGuard {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = tcsetattr(std::io::stdin(), SetArg::TCSANOW, saved);
        }
    }
}
