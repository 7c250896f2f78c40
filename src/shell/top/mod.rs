//! `llmsh top`: a full-screen live view of the kernel, fed by its event stream (`Subscribe`), never by
//! polling. It repaints when events change the picture, at most [`REPAINT_EVERY`] apart, and at once
//! for a key. The picture is [`model`], the keys [`keys`], the drawing [`view`], and the terminal is
//! restored on every way out by [`terminal`].

pub mod keys;
pub mod model;
pub mod terminal;
pub mod view;

use crate::proto::{
    Event, ListRequest, ReniceRequest, Request, Response, SignalRequest, SubscribeRequest,
};
use crate::shell::client::{Client, ClientError};
use crate::shell::session::Shell;
use keys::{Action, Mode};
use model::Model;
use ratatui::crossterm::event::{self as term_event, Event as TermEvent};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The shortest time between two repaints caused by the kernel's events: about four a second, a
/// live picture that costs a busy kernel's watcher little.
pub const REPAINT_EVERY: Duration = Duration::from_millis(250);
/// How often the key reader looks whether `top` has ended (it waits for keys in between).
const KEY_POLL: Duration = Duration::from_millis(100);
/// Keys typed ahead of the screen: a held key fills it in a second, and more would only lag.
const KEY_BUFFER: usize = 64;

/// Runs `top` until `q`; returns its exit status, or why it could not run.
pub async fn run(sh: &Shell, all_users: bool) -> Result<i32, String> {
    let mut model = Model::default();
    let mut events = subscribe(sh, all_users, &mut model)
        .await
        .map_err(|e| e.to_string())?;
    let screen = terminal::Screen::enter().map_err(|e| format!("cannot use the terminal: {e}"))?;
    let backend = ratatui::backend::CrosstermBackend::new(std::io::stdout());
    let mut tty = ratatui::Terminal::new(backend).map_err(|e| e.to_string())?;
    let (key_tx, mut key_rx) = mpsc::channel(KEY_BUFFER);
    let done = Arc::new(AtomicBool::new(false));
    let reader = spawn_key_reader(key_tx, Arc::clone(&done));
    let mut view = Viewer::default();
    let result = loop {
        view.paint_if_due(&mut tty, &model);
        let deadline = view.next_paint();
        tokio::select! {
            event = events.recv() => match event {
                Ok(Response::Event(event)) => {
                    let lost = matches!(event, Event::Lost { .. });
                    view.dirty |= model.apply(event);
                    if lost {
                        refresh(sh, all_users, &mut model).await;
                    }
                }
                Ok(other) => break Err(ClientError::unexpected(&other).to_string()),
                Err(e) => break Err(e.to_string()),
            },
            key = key_rx.recv() => {
                let Some(key) = key else { break Ok(0) };
                match key {
                    TermEvent::Key(key) => match keys::handle(key, &mut view.mode, &mut model) {
                        Some(Action::Quit) => break Ok(0),
                        Some(action) => view.status = act(sh, action).await,
                        None => {}
                    },
                    TermEvent::Resize(..) => {}
                    _ => continue,
                }
                view.dirty = true;
                view.last_paint = None;
            }
            () = tokio::time::sleep_until(deadline.unwrap_or_else(far_future)), if deadline.is_some() => {}
        }
    };
    done.store(true, Ordering::SeqCst);
    drop(tty);
    drop(screen);
    let _ = tokio::task::spawn_blocking(move || reader.join()).await;
    result
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(3600)
}

/// Opens the subscription and reads the snapshot into `model`.
async fn subscribe(sh: &Shell, all_users: bool, model: &mut Model) -> Result<Client, ClientError> {
    let mut client = sh.client().await?;
    client
        .send(Request::Subscribe(SubscribeRequest { all_users }))
        .await?;
    loop {
        match client.recv().await? {
            Response::Event(event @ Event::Snapshot(_)) => {
                let complete = matches!(&event, Event::Snapshot(s) if s.complete);
                model.apply(event);
                if complete {
                    return Ok(client);
                }
            }
            other => return Err(ClientError::unexpected(&other)),
        }
    }
}

/// After lost events, the whole table again from `ps`.
async fn refresh(sh: &Shell, all_users: bool, model: &mut Model) {
    if let Ok(Response::Processes(list)) = sh.call(Request::List(ListRequest { all_users })).await {
        model.replace_rows(list.processes);
    }
}

/// Asks the kernel for `action`; returns the line to show for it.
async fn act(sh: &Shell, action: Action) -> String {
    let (request, done) = match action {
        Action::Signal(pid, signal) => (
            Request::Signal(SignalRequest { pid, signal }),
            format!("sent {signal} to {pid}"),
        ),
        Action::Renice(pid, nice) => (
            Request::Renice(ReniceRequest { pid, nice }),
            format!("{pid}: nice {nice}"),
        ),
        Action::Quit => return String::new(),
    };
    match sh.call(request).await {
        Ok(_) => done,
        Err(e) => format!("{e}"),
    }
}

/// Reads keys on a thread of its own (crossterm's reads block) until `done`.
fn spawn_key_reader(
    keys: mpsc::Sender<TermEvent>,
    done: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !done.load(Ordering::SeqCst) {
            match term_event::poll(KEY_POLL) {
                Ok(true) => match term_event::read() {
                    Ok(event) => {
                        if keys.blocking_send(event).is_err() {
                            return;
                        }
                    }
                    Err(_) => return,
                },
                Ok(false) => {}
                Err(_) => return,
            }
        }
    })
}

/// When to paint, and what the footer says.
#[derive(Default)]
struct Viewer {
    dirty: bool,
    last_paint: Option<Instant>,
    mode: Mode,
    status: String,
    users: std::collections::HashMap<u32, String>,
}

impl Viewer {
    /// When the next paint is due, if one is waiting.
    fn next_paint(&self) -> Option<Instant> {
        if !self.dirty {
            return None;
        }
        Some(
            self.last_paint
                .map_or_else(Instant::now, |t| t + REPAINT_EVERY),
        )
    }

    fn paint_if_due<B: ratatui::backend::Backend>(
        &mut self,
        tty: &mut ratatui::Terminal<B>,
        model: &Model,
    ) {
        let due = self.next_paint().is_some_and(|t| t <= Instant::now());
        if !due && self.last_paint.is_some() {
            return;
        }
        let (mode, status, users) = (&self.mode, &self.status, &mut self.users);
        let _ = tty.draw(|frame| view::draw(frame, model, mode, status, users));
        self.dirty = false;
        self.last_paint = Some(Instant::now());
    }
}
