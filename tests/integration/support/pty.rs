//! A terminal for tests: runs `llmsh` on a pseudo-terminal as a session leader (so Ctrl-C and Ctrl-Z
//! typed on it become SIGINT and SIGTSTP, as on a real terminal), keeps a vt100 model of the screen
//! to answer the line editor's cursor-position queries, and lets a test type keys and wait, with a
//! deadline, for text to appear. A reader thread feeds the model and wakes waiters; nothing sleeps.

use super::{SHELL, STEP};
use std::fs::File;
use std::io::{Read, Write};
use std::num::NonZeroU16;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use tokio::process::{Child, Command};
use tokio::sync::watch;

const ROWS: u16 = 30;
const COLS: u16 = 120;
/// The query a terminal answers with `ESC [ row ; col R`.
const CURSOR_QUERY: &[u8] = b"\x1b[6n";

/// Keys as a terminal sends them.
pub mod keys {
    pub const CTRL_C: &str = "\x03";
    pub const CTRL_D: &str = "\x04";
    pub const CTRL_Z: &str = "\x1a";
    pub const UP: &str = "\x1b[A";
    pub const RIGHT: &str = "\x1b[C";
    pub const TAB: &str = "\t";
    pub const ESC: &str = "\x1b";
}

struct Screen {
    model: vt100::Parser,
    /// Everything the shell wrote, escapes included.
    raw: Vec<u8>,
    closed: bool,
}

/// `llmsh` on a pseudo-terminal.
pub struct Terminal {
    child: Child,
    keyboard: Arc<Mutex<File>>,
    screen: Arc<Mutex<Screen>>,
    changed: watch::Receiver<u64>,
    /// How much of the text [`Terminal::expect`] has already matched past.
    consumed: usize,
    cols: u16,
}

impl Terminal {
    /// Starts `llmsh --socket SOCKET ARGS…` with `home` as its HOME and `home/state` as its
    /// XDG_STATE_HOME, so the user's real history is never touched.
    pub fn spawn(socket: &Path, home: &Path, args: &[&str]) -> Terminal {
        Self::spawn_sized(socket, home, args, (ROWS, COLS))
    }

    /// As [`Terminal::spawn`], on a terminal of `(rows, cols)`.
    pub fn spawn_sized(socket: &Path, home: &Path, args: &[&str], size: (u16, u16)) -> Terminal {
        let (rows, cols) = size;
        let size = nix::pty::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(Some(&size), None).expect("openpty");
        let stdio = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup pty"));
        let mut command = Command::new(SHELL);
        command
            .arg("--socket")
            .arg(socket)
            .args(args)
            .env("HOME", home)
            .env("XDG_STATE_HOME", home.join("state"))
            .env("TERM", "xterm-256color")
            .env_remove("LLMKERNEL_SOCKET")
            .stdin(stdio(&pty.slave))
            .stdout(stdio(&pty.slave))
            .stderr(stdio(&pty.slave))
            .kill_on_drop(true);
        // SAFETY: only async-signal-safe calls between fork and exec: a new session whose
        // controlling terminal is the pty on stdin.
        unsafe {
            command.pre_exec(|| {
                nix::unistd::setsid()?;
                if nix::libc::ioctl(0, nix::libc::TIOCSCTTY, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("spawn llmsh on a pty");
        drop(command);
        drop(pty.slave);
        let master = File::from(pty.master);
        let keyboard = Arc::new(Mutex::new(master.try_clone().expect("dup master")));
        let screen = Arc::new(Mutex::new(Screen {
            model: vt100::Parser::new(nonzero(rows), nonzero(cols), 0),
            raw: Vec::new(),
            closed: false,
        }));
        let (tx, changed) = watch::channel(0);
        let (reader_screen, reader_keyboard) = (Arc::clone(&screen), Arc::clone(&keyboard));
        std::thread::spawn(move || read_screen(master, &reader_screen, &reader_keyboard, &tx));
        Terminal {
            child,
            keyboard,
            screen,
            changed,
            consumed: 0,
            cols,
        }
    }

    /// Types `keys`.
    pub fn send(&self, keys: &str) {
        let mut keyboard = self.keyboard.lock().unwrap();
        keyboard
            .write_all(keys.as_bytes())
            .expect("type on the pty");
    }

    /// Types a line and Enter.
    pub fn line(&self, text: &str) {
        self.send(&format!("{text}\r"));
    }

    /// Types a line and Enter, and waits until the editor has let go of it (its last paint of the
    /// line ends with a newline), so what comes next is the command's own output.
    pub async fn run(&mut self, line: &str) {
        self.line(line);
        self.expect(&format!("{line}\n")).await;
    }

    /// All text written so far, escapes removed.
    pub fn text(&self) -> String {
        strip_escapes(&self.screen.lock().unwrap().raw)
    }

    /// All bytes written so far, escapes and all.
    pub fn raw(&self) -> Vec<u8> {
        self.screen.lock().unwrap().raw.clone()
    }

    /// The screen's rows as shown now.
    pub fn rows(&self) -> Vec<String> {
        let screen = self.screen.lock().unwrap();
        screen.model.screen().rows(0, self.cols).collect()
    }

    /// The screen row the cursor is on.
    pub fn cursor_row(&self) -> String {
        let screen = self.screen.lock().unwrap();
        let (row, _) = screen.model.screen().cursor_position();
        let row = screen
            .model
            .screen()
            .rows(0, self.cols)
            .nth(usize::from(row));
        row.unwrap_or_default()
    }

    /// Waits until `needle` appears after what earlier calls matched; returns the text between.
    pub async fn expect(&mut self, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            self.changed.borrow_and_update();
            let (text, closed) = {
                let screen = self.screen.lock().unwrap();
                (strip_escapes(&screen.raw), screen.closed)
            };
            let unmatched = &text[self.consumed.min(text.len())..];
            if let Some(at) = unmatched.find(needle) {
                let before = unmatched[..at].to_string();
                self.consumed += at + needle.len();
                return before;
            }
            let woke = tokio::time::timeout_at(deadline, self.changed.changed()).await;
            if closed || woke.is_err() || woke.is_ok_and(|r| r.is_err()) {
                panic!(
                    "timed out waiting for {needle:?}; unmatched output:\n{}\n--- screen ---\n{}",
                    unmatched,
                    self.rows().join("\n").trim_end()
                );
            }
        }
    }

    /// Waits until the screen row under the cursor contains `needle`.
    pub async fn expect_cursor_row(&mut self, needle: &str) {
        let what = format!("the cursor row to show {needle:?}");
        self.expect_screen(&what, |t| t.cursor_row().contains(needle))
            .await;
    }

    /// Waits until the cursor sits on a fresh, empty `prompt`: the editor is reading a new line, so
    /// keys typed now are not lost with the end of the last one.
    pub async fn expect_empty_prompt(&mut self, prompt: &str) {
        let what = format!("an empty {prompt:?} prompt");
        let want = prompt.trim_end();
        self.expect_screen(&what, |t| t.cursor_row().trim_end() == want)
            .await;
    }

    /// Waits until some screen row holds all of `parts`.
    pub async fn expect_row_with(&mut self, parts: &[&str]) {
        let what = format!("a row with {parts:?}");
        self.expect_screen(&what, |t| {
            t.rows().iter().any(|r| parts.iter().all(|p| r.contains(p)))
        })
        .await;
    }

    /// Sends `signal` to the shell.
    pub fn kill(&self, signal: nix::sys::signal::Signal) {
        let pid = self.child.id().expect("llmsh is running") as i32;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).expect("signal llmsh");
    }

    /// Whether the screen is the alternate one (a full-screen program holds it).
    pub fn alternate_screen(&self) -> bool {
        self.screen
            .lock()
            .unwrap()
            .model
            .screen()
            .alternate_screen()
    }

    /// Waits until `cond` holds of the screen.
    pub async fn expect_screen(&mut self, what: &str, cond: impl Fn(&Terminal) -> bool) {
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            self.changed.borrow_and_update();
            if cond(self) {
                return;
            }
            if tokio::time::timeout_at(deadline, self.changed.changed())
                .await
                .is_err()
            {
                panic!(
                    "timed out waiting for {what}; screen:\n{}",
                    self.rows().join("\n").trim_end()
                );
            }
        }
    }

    /// Waits until the shell has left the line editor to run a command: the terminal is back in
    /// canonical mode, so Ctrl-C and Ctrl-Z typed now become signals. The line discipline tells no
    /// one when its mode changes, so this looks every few milliseconds, up to a deadline.
    pub async fn expect_command_running(&self) {
        use nix::sys::termios::{LocalFlags, tcgetattr};
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            let attrs = tcgetattr(&*self.keyboard.lock().unwrap()).expect("tcgetattr");
            if attrs.local_flags.contains(LocalFlags::ICANON) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the shell never left the line editor; output:\n{}",
                self.text()
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Waits for the shell to exit; returns its status.
    pub async fn exit_status(&mut self) -> i32 {
        let status = tokio::time::timeout(STEP, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("llmsh did not exit; output:\n{}", self.text()))
            .expect("wait for llmsh");
        status.code().unwrap_or(-1)
    }
}

fn nonzero(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).expect("a terminal has rows and columns")
}

/// The reader thread: feeds the screen model, answers cursor-position queries at the point they
/// are asked, and wakes waiters. Ends when the shell closes the terminal.
fn read_screen(
    mut master: File,
    screen: &Mutex<Screen>,
    keyboard: &Mutex<File>,
    changed: &watch::Sender<u64>,
) {
    let mut buf = [0u8; 4096];
    loop {
        let n = match master.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut replies = Vec::new();
        {
            let mut screen = screen.lock().unwrap();
            let mut rest = &buf[..n];
            while let Some(at) = find(rest, CURSOR_QUERY) {
                let (before, after) = rest.split_at(at + CURSOR_QUERY.len());
                screen.model.process(before);
                let (row, col) = screen.model.screen().cursor_position();
                replies.push(format!("\x1b[{};{}R", row + 1, col + 1));
                rest = after;
            }
            screen.model.process(rest);
            screen.raw.extend_from_slice(&buf[..n]);
        }
        for reply in replies {
            let _ = keyboard.lock().unwrap().write_all(reply.as_bytes());
        }
        changed.send_modify(|v| *v += 1);
    }
    screen.lock().unwrap().closed = true;
    changed.send_modify(|v| *v += 1);
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Terminal output as text: escape sequences and carriage returns removed. An unfinished escape
/// at the end is dropped, so the text of a prefix never changes as more arrives.
pub fn strip_escapes(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => match chars.next() {
                // CSI: parameters, then a final byte in @..~.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC: up to BEL or ESC \.
                Some(']') => {
                    while let Some(c) = chars.next() {
                        if c == '\x07' || (c == '\x1b' && chars.next_if_eq(&'\\').is_some()) {
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}
