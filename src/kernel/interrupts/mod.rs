//! Interrupts: the kernel's three interrupt lines and the handler process each one spawns.
//!
//! - USER_INPUT is a query from a client; its handler is the query's own process, so the line only counts.
//! - TIMER is raised by SIGALRM (from `kill`, or from the kernel's own interval timer when
//!   `[interrupts.timer] period_secs` is set) and by `interrupt timer`. Its handler is by default the
//!   prototype's HOUSEKEEPING "system maintenance bot" doing a routine check.
//! - SYSTEM is raised by SIGUSR1 and by `interrupt system MESSAGE`. Its handler is by default the
//!   prototype's SYSTEM "system management bot" addressing the message. A signal carries no text, so
//!   SIGUSR1 delivers the messages waiting in the spool directory ([`spool`]), one handler each, or the
//!   default message when none waits.
//!
//! Handlers (type, system prompt, prompt template with `{message}`) come from `[interrupts.system]` and
//! `[interrupts.timer]` in the config, and change on reload.
//!
//! # Signals coalesce
//!
//! A signal is a doorbell, never a message: while one SIGUSR1 is pending, more SIGUSR1s are the same
//! one. The kernel keeps that promise all the way up. Rings are counted and taken in batches
//! ([`Doorbell`]); a batch starts at most one handler (SIGUSR1: one per spooled message); and a line
//! never has more than `max_waiting` handlers waiting for a slot: a raise beyond that merges into the
//! handlers already waiting (coalesced), and spooled messages stay in the spool until a handler starts
//! and makes room. So a storm of signals costs a few wake-ups and at most `max_waiting` queued
//! processes per line. Each line counts raised, coalesced and handled (`llmsh -c interrupts`);
//! rings merged by the operating system before the kernel saw them are not counted anywhere.
//!
//! # The timer tick
//!
//! Every TIMER raise is also the scheduler's clock edge: besides its handler it runs a dispatch pass,
//! so a free slot takes the best waiting process by its aged rank, and brings systemd's STATUS= up to
//! date. Aging itself is a function of the kernel clock (see `scheduler::priority`): priorities rise
//! between ticks at any period, and the tick never needs to re-sort the run queue.

mod doorbell;
mod line;
pub mod spool;

pub use doorbell::Doorbell;
pub use line::{Counters, LineState};

use super::Kernel;
use super::process::Spec;
use crate::config::{InterruptHandler, InterruptsConfig};
use crate::proto::{
    Failure, FailureKind, InterruptKind, InterruptLine, InterruptTable, Pid, ProcessState,
    ProcessType,
};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

/// The interrupt controller: the doorbells signals ring, and each line's counters and waiting handlers.
#[derive(Default)]
pub struct Interrupts {
    /// Rung by SIGUSR1.
    pub system_bell: Doorbell,
    /// Rung by SIGALRM, and so by the interval timer.
    pub timer_bell: Doorbell,
    /// The lines' bookkeeping. Lock order: this lock first, then the kernel state's, never the other
    /// way round (no state transition touches interrupts).
    lines: Mutex<Lines>,
}

#[derive(Default)]
struct Lines {
    user_input: Counters,
    timer: LineState,
    system: LineState,
    /// Spooled SYSTEM messages waiting for room under the limit, in delivery order.
    backlog: VecDeque<PathBuf>,
}

/// The lines that spawn handlers.
#[derive(Clone, Copy, Debug)]
enum Line {
    Timer,
    System,
}

impl Line {
    fn of(kind: InterruptKind) -> Option<Line> {
        match kind {
            InterruptKind::Timer => Some(Line::Timer),
            InterruptKind::System => Some(Line::System),
            InterruptKind::UserInput => None,
        }
    }

    fn handler(self, config: &InterruptsConfig) -> &InterruptHandler {
        match self {
            Line::Timer => &config.timer,
            Line::System => &config.system,
        }
    }
}

impl Lines {
    fn get(&mut self, line: Line) -> &mut LineState {
        match line {
            Line::Timer => &mut self.timer,
            Line::System => &mut self.system,
        }
    }
}

impl Interrupts {
    fn lock(&self) -> MutexGuard<'_, Lines> {
        // Counters stay meaningful even if a panic interrupted an update; keep serving them.
        self.lines
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Kernel {
    /// Raises an interrupt by hand on behalf of `uid`, as a signal would (`interrupt`). Returns the
    /// handler process, or `None` when the raise was coalesced into handlers already waiting.
    pub fn raise_interrupt(
        self: &Arc<Self>,
        kind: InterruptKind,
        message: Option<&str>,
        uid: u32,
    ) -> Result<Option<Pid>, Failure> {
        let line = Line::of(kind).ok_or_else(|| {
            Failure::new(
                FailureKind::BadRequest,
                "a user-input interrupt is a query: use `query PROMPT`",
            )
        })?;
        let (config, max_bytes) =
            self.read(|s| (s.config.interrupts.clone(), s.config.max_prompt_bytes));
        // The message becomes the handler's prompt: the same limit as any prompt.
        if let Some(message) = message.filter(|m| m.len() > max_bytes) {
            return Err(Failure::new(
                FailureKind::BadRequest,
                format!(
                    "the interrupt message is {} bytes, over the kernel's limit of {max_bytes}",
                    message.len()
                ),
            ));
        }
        let mut lines = self.interrupts.lock();
        let pid = self
            .has_room(&mut lines, line, &config)
            .then(|| self.start_handler(&mut lines, line, &config, message, uid))
            .transpose()?;
        lines.get(line).record_raises(1, pid.is_some());
        drop(lines);
        if pid.is_none() {
            self.announce(line, None);
            self.update(|_| ()); // the tick's dispatch pass, even when coalesced
        }
        Ok(pid)
    }

    /// Counts a query: the USER_INPUT line, whose handler is the query's own process.
    pub fn count_user_input(&self) {
        let mut lines = self.interrupts.lock();
        lines.user_input.raised += 1;
        lines.user_input.handled += 1;
    }

    /// The lines and their counters, for `interrupts`.
    pub fn interrupt_table(&self) -> InterruptTable {
        let config = self.read(|s| s.config.interrupts.clone());
        let mut lines = self.interrupts.lock();
        let mut row = |kind, line: Option<Line>, handler_type: ProcessType| {
            let Some(line) = line else {
                return InterruptLine {
                    kind,
                    raised: lines.user_input.raised,
                    coalesced: lines.user_input.coalesced,
                    handled: lines.user_input.handled,
                    waiting: 0,
                    max_waiting: None,
                    handler_type,
                };
            };
            self.has_room(&mut lines, line, &config);
            let state = lines.get(line);
            InterruptLine {
                kind,
                raised: state.counters.raised,
                coalesced: state.counters.coalesced,
                handled: state.counters.handled,
                waiting: state.waiting() as u32,
                max_waiting: Some(line.handler(&config).max_waiting),
                handler_type,
            }
        };
        let table = vec![
            row(InterruptKind::UserInput, None, ProcessType::User),
            row(
                InterruptKind::Timer,
                Some(Line::Timer),
                config.timer.process_type,
            ),
            row(
                InterruptKind::System,
                Some(Line::System),
                config.system.process_type,
            ),
        ];
        InterruptTable {
            lines: table,
            timer_period_ms: config.timer_period.map(|p| p.as_millis() as u64),
            spool_dir: config.spool_dir.display().to_string(),
            spooled: spool::pending(&config.spool_dir).len() as u32,
        }
    }

    /// Takes the doorbells' rings and answers them, then delivers spooled messages that waited for
    /// room. Returns whether messages still wait for room. Spool reads are small local file reads.
    fn answer_doorbells(self: &Arc<Self>) -> bool {
        let config = self.read(|s| s.config.interrupts.clone());
        let owner = self.owner_uid;
        let mut lines = self.interrupts.lock();
        let timer_rings = self.interrupts.timer_bell.take();
        if timer_rings > 0 {
            let started = self.has_room(&mut lines, Line::Timer, &config);
            let started = started
                && self
                    .start_handler(&mut lines, Line::Timer, &config, None, owner)
                    .is_ok();
            if !started {
                self.announce(Line::Timer, None);
                self.update(|_| ());
            }
            lines.timer.record_raises(timer_rings, started);
        }
        let system_rings = self.interrupts.system_bell.take();
        if system_rings > 0 {
            lines.backlog = spool::pending(&config.spool_dir).into();
            let started = if lines.backlog.is_empty() {
                self.has_room(&mut lines, Line::System, &config)
                    && self
                        .start_handler(&mut lines, Line::System, &config, None, owner)
                        .is_ok()
            } else {
                self.deliver_spooled(&mut lines, &config) > 0
            };
            lines.system.record_raises(system_rings, started);
            if !started {
                self.announce(Line::System, None);
            }
        } else if !lines.backlog.is_empty() {
            self.deliver_spooled(&mut lines, &config);
        }
        !lines.backlog.is_empty()
    }

    /// Starts a handler for each spooled message while the SYSTEM line has room; returns how many.
    fn deliver_spooled(self: &Arc<Self>, lines: &mut Lines, config: &InterruptsConfig) -> u64 {
        let mut delivered = 0;
        while let Some(path) = lines.backlog.front().cloned() {
            if !self.has_room(lines, Line::System, config) {
                break;
            }
            if let spool::Taken::Message(text) = spool::read(&path) {
                let uid = self.owner_uid;
                if self
                    .start_handler(lines, Line::System, config, Some(&text), uid)
                    .is_err()
                {
                    break; // not durable now: the message stays in the spool for the next try
                }
                spool::remove(&path);
                delivered += 1;
            }
            lines.backlog.pop_front();
        }
        delivered
    }

    /// Tells subscribers of a raise: the handler it started, or `None` when it merged into waiting ones.
    fn announce(&self, line: Line, handler: Option<Pid>) {
        let kind = match line {
            Line::Timer => InterruptKind::Timer,
            Line::System => InterruptKind::System,
        };
        let raised = crate::proto::InterruptRaised { kind, handler };
        self.events.publish(crate::proto::Event::Interrupt(raised));
    }

    /// Whether `line` may queue another handler (forgetting those that have started meanwhile).
    fn has_room(&self, lines: &mut Lines, line: Line, config: &InterruptsConfig) -> bool {
        let state = lines.get(line);
        self.read(|s| {
            state.prune(|pid| {
                s.get(pid)
                    .is_some_and(|p| p.state() == ProcessState::Waiting && p.tokens_used() == 0)
            })
        });
        state.has_room(line.handler(config).max_waiting)
    }

    /// Creates a handler process for `line` with `message` (or the default message).
    fn start_handler(
        self: &Arc<Self>,
        lines: &mut Lines,
        line: Line,
        config: &InterruptsConfig,
        message: Option<&str>,
        uid: u32,
    ) -> Result<Pid, Failure> {
        let handler = line.handler(config);
        let message = message
            .filter(|m| !m.trim().is_empty())
            .unwrap_or(&config.default_message);
        let process_type = handler.process_type;
        let system = Some(handler.system.clone());
        let prompt = handler.prompt(message);
        let pid = self
            .update(|s| {
                let allowance = s.config.type_settings(process_type).allowance_tokens;
                let spec = Spec {
                    uid,
                    process_type,
                    system,
                    prompt,
                    allowance,
                };
                s.create(spec, 0)
            })
            .inspect_err(|e| tracing::error!(interrupt = ?line, "cannot start a handler: {e}"))?;
        lines.get(line).started(pid);
        tracing::info!(%pid, interrupt = ?line, "interrupt handler started");
        self.announce(line, Some(pid));
        Ok(pid)
    }
}

/// The kernel's interrupt task: answers the doorbells as they ring, and delivers spooled messages that
/// wait for room as handlers leave the run queue. Runs until shutdown.
pub async fn serve(kernel: Arc<Kernel>) {
    loop {
        // Registered before looking, so a change between the look and the wait still wakes us.
        let changed = kernel.changed();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let backlog = kernel.answer_doorbells();
        tokio::select! {
            _ = kernel.shutdown.cancelled() => return,
            _ = kernel.interrupts.system_bell.rung() => {}
            _ = kernel.interrupts.timer_bell.rung() => {}
            _ = &mut changed, if backlog => {}
        }
    }
}
