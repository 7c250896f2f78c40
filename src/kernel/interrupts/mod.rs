//! Interrupts: the kernel's three interrupt lines (USER_INPUT, TIMER, SYSTEM) and the handler process
//! each spawns. A signal (SIGUSR1, SIGALRM) or `interrupt` from the shell raises one; the handler is the
//! prototype's by default: a "system management bot" for SYSTEM events and a "system maintenance bot"
//! doing a routine check as HOUSEKEEPING for the timer.

use super::Kernel;
use super::process::Spec;
use crate::proto::{Failure, FailureKind, InterruptKind, Pid, ProcessType};
use std::sync::Arc;

/// The message a SYSTEM interrupt carries when none was given.
pub const DEFAULT_SYSTEM_MESSAGE: &str = "A system event occurred.";

/// What a handler process is made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handler {
    pub process_type: ProcessType,
    pub system: String,
    /// `{message}` is replaced by the interrupt's message.
    pub template: String,
}

/// The prototype's handler for an interrupt line; `None` for USER_INPUT, whose handler is the query.
pub fn default_handler(kind: InterruptKind) -> Option<Handler> {
    match kind {
        InterruptKind::System => Some(Handler {
            process_type: ProcessType::System,
            system: "You are a system management bot.".into(),
            template: "Address the following system event: {message}".into(),
        }),
        InterruptKind::Timer => Some(Handler {
            process_type: ProcessType::Housekeeping,
            system: "You are a system maintenance bot.".into(),
            template: "Perform routine system check.".into(),
        }),
        InterruptKind::UserInput => None,
    }
}

impl Kernel {
    /// Raises an interrupt on behalf of `uid`: creates its handler process and returns its pid.
    pub fn raise_interrupt(
        self: &Arc<Self>,
        kind: InterruptKind,
        message: Option<&str>,
        uid: u32,
    ) -> Result<Pid, Failure> {
        let handler = default_handler(kind).ok_or_else(|| {
            Failure::new(
                FailureKind::BadRequest,
                "a user-input interrupt is a query: use `query PROMPT`",
            )
        })?;
        let prompt = handler
            .template
            .replace("{message}", message.unwrap_or(DEFAULT_SYSTEM_MESSAGE));
        let pid = self.update(|s| {
            let allowance = s
                .config
                .type_settings(handler.process_type)
                .allowance_tokens;
            let spec = Spec {
                uid,
                process_type: handler.process_type,
                system: Some(handler.system),
                prompt,
                allowance,
            };
            s.create(spec, 0)
        });
        tracing::info!(%pid, ?kind, "interrupt raised");
        Ok(pid)
    }
}
