//! The `[interrupts.system]` and `[interrupts.timer]` sections: which handler process each interrupt
//! line spawns (type, system prompt, prompt template with `{message}`), how many of its handlers may
//! wait for a slot at once, where SYSTEM messages are spooled, and the period of the kernel's own
//! interval timer. The defaults are the prototype's handlers.

use crate::proto::ProcessType;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// Handlers of one line that may wait for a slot at once, by default: enough to queue a few distinct
/// events, few enough that a signal storm cannot flood the run queue.
pub const DEFAULT_MAX_WAITING: u32 = 4;
/// The most a config may allow to wait at once.
pub const MAX_MAX_WAITING: u32 = 1024;
/// The shortest interval timer period a config may ask for: a faster tick only coalesces.
pub const MIN_TIMER_PERIOD: Duration = Duration::from_millis(10);
/// The message a SYSTEM interrupt carries when none was given.
pub const DEFAULT_SYSTEM_MESSAGE: &str = "A system event occurred.";

/// The process an interrupt spawns, and how many of them may wait at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterruptHandler {
    pub process_type: ProcessType,
    pub system: String,
    /// The user prompt; `{message}` is replaced by the interrupt's message.
    pub template: String,
    /// Handlers of this line that may wait for a slot at once; a raise beyond that is coalesced.
    pub max_waiting: u32,
}

impl InterruptHandler {
    /// The prompt for one interrupt.
    pub fn prompt(&self, message: &str) -> String {
        self.template.replace("{message}", message)
    }
}

/// The interrupt lines' settings, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterruptsConfig {
    pub system: InterruptHandler,
    pub timer: InterruptHandler,
    /// What a SYSTEM interrupt says when it carries no message.
    pub default_message: String,
    /// SIGUSR1's mailbox: one file per message, delivered in name order.
    pub spool_dir: PathBuf,
    /// The kernel's own interval timer (SIGALRM every period); `None`: off.
    pub timer_period: Option<Duration>,
}

impl Default for InterruptsConfig {
    fn default() -> Self {
        InterruptsConfig {
            system: InterruptHandler {
                process_type: ProcessType::System,
                system: "You are a system management bot.".into(),
                template: "Address the following system event: {message}".into(),
                max_waiting: DEFAULT_MAX_WAITING,
            },
            timer: InterruptHandler {
                process_type: ProcessType::Housekeeping,
                system: "You are a system maintenance bot.".into(),
                template: "Perform routine system check.".into(),
                max_waiting: DEFAULT_MAX_WAITING,
            },
            default_message: DEFAULT_SYSTEM_MESSAGE.into(),
            spool_dir: super::paths::default_spool_dir(&super::paths::default_socket()),
            timer_period: None,
        }
    }
}

/// `[interrupts]` in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterruptsSection {
    #[serde(default)]
    pub system: SystemSection,
    #[serde(default)]
    pub timer: TimerSection,
}

/// `[interrupts.system]`: SIGUSR1 and `interrupt system`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemSection {
    #[serde(rename = "type")]
    pub process_type: Option<String>,
    pub system: Option<String>,
    pub prompt: Option<String>,
    pub max_waiting: Option<u32>,
    pub default_message: Option<String>,
    pub spool_dir: Option<PathBuf>,
}

/// `[interrupts.timer]`: SIGALRM, the interval timer and `interrupt timer`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimerSection {
    #[serde(rename = "type")]
    pub process_type: Option<String>,
    pub system: Option<String>,
    pub prompt: Option<String>,
    pub max_waiting: Option<u32>,
    /// Seconds between ticks of the kernel's interval timer; 0 or absent: off.
    pub period_secs: Option<f64>,
}

/// A bad value: the section, the key and what is wrong with it.
#[derive(Debug, PartialEq, Eq)]
pub struct Invalid {
    pub section: &'static str,
    pub key: &'static str,
    pub message: String,
}

impl InterruptsSection {
    /// Checks every value that has a range or a vocabulary.
    pub fn validate(&self) -> Result<(), Invalid> {
        let s = &self.system;
        let t = &self.timer;
        let common = [
            (
                "[interrupts.system]",
                &s.process_type,
                &s.prompt,
                s.max_waiting,
            ),
            (
                "[interrupts.timer]",
                &t.process_type,
                &t.prompt,
                t.max_waiting,
            ),
        ];
        for (section, process_type, prompt, max_waiting) in common {
            let invalid = |key, message: String| Invalid {
                section,
                key,
                message,
            };
            if let Some(name) = process_type {
                name.parse::<ProcessType>()
                    .map_err(|e| invalid("type", e))?;
            }
            if prompt.as_ref().is_some_and(|p| p.trim().is_empty()) {
                return Err(invalid("prompt", "must not be empty".into()));
            }
            if max_waiting.is_some_and(|n| !(1..=MAX_MAX_WAITING).contains(&n)) {
                return Err(invalid(
                    "max_waiting",
                    format!("must be 1 to {MAX_MAX_WAITING}"),
                ));
            }
        }
        if let Some(secs) = t.period_secs {
            let off = secs == 0.0;
            let in_range = (MIN_TIMER_PERIOD.as_secs_f64()..1e6).contains(&secs);
            if !(off || in_range) {
                return Err(Invalid {
                    section: "[interrupts.timer]",
                    key: "period_secs",
                    message: format!(
                        "must be 0 (off) or {} to 1000000 seconds",
                        MIN_TIMER_PERIOD.as_secs_f64()
                    ),
                });
            }
        }
        Ok(())
    }

    /// Overlays the sections on `c` (values already validated).
    pub fn apply(&self, c: &mut InterruptsConfig) {
        let s = &self.system;
        overlay(
            &mut c.system,
            &s.process_type,
            &s.system,
            &s.prompt,
            s.max_waiting,
        );
        if let Some(m) = &s.default_message {
            c.default_message = m.clone();
        }
        if let Some(dir) = &s.spool_dir {
            c.spool_dir = dir.clone();
        }
        let t = &self.timer;
        overlay(
            &mut c.timer,
            &t.process_type,
            &t.system,
            &t.prompt,
            t.max_waiting,
        );
        if let Some(secs) = t.period_secs {
            c.timer_period = (secs > 0.0).then(|| Duration::from_secs_f64(secs));
        }
    }
}

fn overlay(
    h: &mut InterruptHandler,
    process_type: &Option<String>,
    system: &Option<String>,
    prompt: &Option<String>,
    max_waiting: Option<u32>,
) {
    if let Some(t) = process_type.as_deref().and_then(|t| t.parse().ok()) {
        h.process_type = t;
    }
    if let Some(s) = system {
        h.system = s.clone();
    }
    if let Some(p) = prompt {
        h.template = p.clone();
    }
    if let Some(n) = max_waiting {
        h.max_waiting = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(text: &str) -> InterruptsSection {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn defaults_are_the_prototypes_handlers() {
        let c = InterruptsConfig::default();
        assert_eq!(
            c.system.prompt("Low disk space"),
            "Address the following system event: Low disk space"
        );
        assert_eq!(c.system.process_type, ProcessType::System);
        assert_eq!(c.timer.process_type, ProcessType::Housekeeping);
        assert_eq!(c.timer.prompt("x"), "Perform routine system check.");
        assert_eq!(c.timer_period, None, "the interval timer is off by default");
    }

    #[test]
    fn sections_overlay_the_defaults() {
        let s = section(
            "[system]\ntype = \"user\"\nprompt = \"Handle: {message}\"\nmax_waiting = 2\n\
             [timer]\nperiod_secs = 0.5\nsystem = \"tick\"\n",
        );
        s.validate().unwrap();
        let mut c = InterruptsConfig::default();
        s.apply(&mut c);
        assert_eq!(c.system.process_type, ProcessType::User);
        assert_eq!(c.system.prompt("fan"), "Handle: fan");
        assert_eq!(c.system.max_waiting, 2);
        assert_eq!(c.timer.system, "tick");
        assert_eq!(c.timer_period, Some(Duration::from_millis(500)));
        section("[timer]\nperiod_secs = 0\n").apply(&mut c);
        assert_eq!(c.timer_period, None, "0 turns the timer off");
    }

    #[test]
    fn bad_values_name_their_section_and_key() {
        for (text, key) in [
            ("[system]\ntype = \"daemon\"\n", "type"),
            ("[timer]\nmax_waiting = 0\n", "max_waiting"),
            ("[timer]\nperiod_secs = 0.001\n", "period_secs"),
            ("[timer]\nperiod_secs = -1\n", "period_secs"),
            ("[system]\nprompt = \" \"\n", "prompt"),
        ] {
            let err = section(text).validate().unwrap_err();
            assert_eq!(err.key, key, "{text}");
        }
    }
}
