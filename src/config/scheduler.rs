//! The `[scheduler]` section: how the kernel keeps slots for interactive work (the reservation) and
//! how it avoids switching processes back and forth (the guard and the margin). The policies
//! themselves are chosen by the top-level `policy` key.

use crate::proto::ProcessType;
use serde::Deserialize;
use std::time::Duration;

/// The reservation window by default: long enough to span the pauses of someone asking questions
/// in turn, short enough that background work soon gets every slot back once they stop.
pub const DEFAULT_RESERVATION_WINDOW: Duration = Duration::from_secs(10);
/// Quanta a resumed process keeps its slot against its equals, by default.
pub const DEFAULT_SWITCH_GUARD_QUANTA: u32 = 2;
/// Quanta of waiting a process needs, by default, to displace a running one of its own class.
pub const DEFAULT_SWITCH_MARGIN_QUANTA: u32 = 2;
/// The most quanta a guard or margin may be: beyond it a policy's turns never come.
pub const MAX_SWITCH_QUANTA: u32 = 1000;

/// The scheduler's settings, resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchedulerSettings {
    /// Slots kept free of background work while interactive work is about; `None`: one when there
    /// are two slots or more. Never all of them: background work always keeps one.
    pub reserved_slots: Option<u32>,
    /// The least urgent interactive type: it and every type above it are interactive.
    pub interactive_type: ProcessType,
    /// How long after interactive work was last seen the reservation holds.
    pub reservation_window: Duration,
    /// A process switched back onto a slot is not switched out again within this many quanta of
    /// its run, except for a strictly more urgent class.
    pub switch_guard_quanta: u32,
    /// A waiting process displaces a running one of its own class only after waiting this many of
    /// the running one's quanta longer than it (policies with aging), or half the tokens switching
    /// it out would make the server read again if that is more; 0 turns the margin off.
    pub switch_margin_quanta: u32,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        SchedulerSettings {
            reserved_slots: None,
            interactive_type: ProcessType::User,
            reservation_window: DEFAULT_RESERVATION_WINDOW,
            switch_guard_quanta: DEFAULT_SWITCH_GUARD_QUANTA,
            switch_margin_quanta: DEFAULT_SWITCH_MARGIN_QUANTA,
        }
    }
}

impl SchedulerSettings {
    /// Whether processes of type `t` are interactive.
    pub fn is_interactive(&self, t: ProcessType) -> bool {
        let index = |t: ProcessType| ProcessType::ALL.iter().position(|x| *x == t);
        index(t) >= index(self.interactive_type)
    }

    /// Slots kept from background work on `cpus` slots while the reservation holds.
    pub fn reserved_of(&self, cpus: u32) -> u32 {
        let wanted = self.reserved_slots.unwrap_or(u32::from(cpus >= 2));
        wanted.min(cpus.saturating_sub(1))
    }
}

/// `[scheduler]` in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerSection {
    pub reserved_slots: Option<u32>,
    pub interactive_type: Option<String>,
    pub reservation_window_secs: Option<f64>,
    pub switch_guard_quanta: Option<u32>,
    pub switch_margin_quanta: Option<u32>,
}

impl SchedulerSection {
    /// The first bad key and why, if any.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if let Some(t) = &self.interactive_type {
            t.parse::<ProcessType>()
                .map_err(|e| ("interactive_type", e))?;
        }
        if self
            .reservation_window_secs
            .is_some_and(|s| !(0.0..1e6).contains(&s))
        {
            return Err((
                "reservation_window_secs",
                "must be 0 or a positive number of seconds".into(),
            ));
        }
        for (key, v) in [
            ("switch_guard_quanta", self.switch_guard_quanta),
            ("switch_margin_quanta", self.switch_margin_quanta),
        ] {
            if v.is_some_and(|n| n > MAX_SWITCH_QUANTA) {
                return Err((key, format!("must be at most {MAX_SWITCH_QUANTA}")));
            }
        }
        Ok(())
    }

    /// Overlays this section on `s` (validated first).
    pub fn apply(&self, s: &mut SchedulerSettings) {
        if self.reserved_slots.is_some() {
            s.reserved_slots = self.reserved_slots;
        }
        if let Some(t) = self
            .interactive_type
            .as_deref()
            .and_then(|t| t.parse().ok())
        {
            s.interactive_type = t;
        }
        if let Some(secs) = self.reservation_window_secs {
            s.reservation_window = Duration::from_secs_f64(secs);
        }
        if let Some(n) = self.switch_guard_quanta {
            s.switch_guard_quanta = n;
        }
        if let Some(n) = self.switch_margin_quanta {
            s.switch_margin_quanta = n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_slot_is_reserved_from_two_on_and_background_always_keeps_one() {
        let s = SchedulerSettings::default();
        assert_eq!(
            [1, 2, 4].map(|cpus| s.reserved_of(cpus)),
            [0, 1, 1],
            "default"
        );
        let many = SchedulerSettings {
            reserved_slots: Some(3),
            ..s
        };
        assert_eq!([1, 2, 4].map(|cpus| many.reserved_of(cpus)), [0, 1, 3]);
    }

    #[test]
    fn user_and_system_are_interactive_by_default() {
        let s = SchedulerSettings::default();
        let interactive: Vec<bool> = ProcessType::ALL.map(|t| s.is_interactive(t)).into();
        assert_eq!(interactive, [false, false, false, true, true]);
    }
}
