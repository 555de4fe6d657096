//! The drill's time as the scoreboard shows it: the running tick, when the next one starts,
//! whether the drill is paused. The binary publishes it on a `tokio::sync::watch` channel.

use std::time::Duration;

use chrono::{DateTime, Utc};
use gongfang_core::Tick;
use serde::Serialize;

/// Where the drill stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockPhase {
    /// Before tick 0.
    NotStarted,
    /// Ticks are running.
    Running,
    /// An organiser paused the drill; ticks pass without checks.
    Paused,
    /// The drill has ended.
    Over,
}

/// The game clock the scoreboard shows: what the countdown counts down to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrillClock {
    pub phase: ClockPhase,
    /// The running tick (also while paused); `None` before the start and after the end.
    pub tick: Option<Tick>,
    /// When the running tick started.
    pub tick_started_at: Option<DateTime<Utc>>,
    /// Length of one tick.
    pub tick_length: Duration,
    /// When tick 0 starts (`None` if an organiser has not set it yet).
    pub drill_starts_at: Option<DateTime<Utc>>,
    /// When the drill ends.
    pub drill_ends_at: Option<DateTime<Utc>>,
}

impl DrillClock {
    /// A clock for a drill that has not been scheduled: no tick, no countdown.
    pub fn unscheduled(tick_length: Duration) -> DrillClock {
        DrillClock {
            phase: ClockPhase::NotStarted,
            tick: None,
            tick_started_at: None,
            tick_length,
            drill_starts_at: None,
            drill_ends_at: None,
        }
    }

    /// When the next tick starts: the end of the running tick, or the drill's start.
    pub fn next_tick_at(&self) -> Option<DateTime<Utc>> {
        match self.phase {
            ClockPhase::NotStarted => self.drill_starts_at,
            ClockPhase::Running | ClockPhase::Paused => {
                let started = self.tick_started_at?;
                let next = started + chrono::Duration::from_std(self.tick_length).ok()?;
                Some(match self.drill_ends_at {
                    Some(end) if end < next => end,
                    _ => next,
                })
            }
            ClockPhase::Over => None,
        }
    }

    /// The clock as JSON, with the server's `now` so a browser can count down without
    /// trusting its own clock.
    pub(crate) fn view(&self, now: DateTime<Utc>) -> ClockView {
        ClockView {
            now,
            phase: self.phase,
            tick: self.tick,
            tick_started_at: self.tick_started_at,
            next_tick_at: self.next_tick_at(),
            tick_length_ms: u64::try_from(self.tick_length.as_millis()).unwrap_or(u64::MAX),
            drill_starts_at: self.drill_starts_at,
            drill_ends_at: self.drill_ends_at,
        }
    }
}

/// A drill's fixed timing, from which the binary derives a [`DrillClock`] whenever the
/// engine's current tick or the pause state changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// When tick 0 starts.
    pub start: DateTime<Utc>,
    pub tick_length: Duration,
    /// How long the drill runs.
    pub duration: Duration,
}

impl Schedule {
    /// When `tick` starts.
    pub fn tick_start(&self, tick: Tick) -> Option<DateTime<Utc>> {
        let offset = self.tick_length.checked_mul(tick.0)?;
        Some(self.start + chrono::Duration::from_std(offset).ok()?)
    }

    /// When the drill ends.
    pub fn end(&self) -> Option<DateTime<Utc>> {
        Some(self.start + chrono::Duration::from_std(self.duration).ok()?)
    }

    /// The clock at `now`, given the engine's running tick (`None` outside the drill) and
    /// whether an organiser has paused it.
    pub fn clock(&self, current: Option<Tick>, paused: bool, now: DateTime<Utc>) -> DrillClock {
        let ends = self.end();
        let phase = match current {
            Some(_) if paused => ClockPhase::Paused,
            Some(_) => ClockPhase::Running,
            None if now < self.start => ClockPhase::NotStarted,
            None => ClockPhase::Over,
        };
        DrillClock {
            phase,
            tick: current,
            tick_started_at: current.and_then(|t| self.tick_start(t)),
            tick_length: self.tick_length,
            drill_starts_at: Some(self.start),
            drill_ends_at: ends,
        }
    }
}

/// [`DrillClock`] as the API and the websocket send it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ClockView {
    pub now: DateTime<Utc>,
    pub phase: ClockPhase,
    pub tick: Option<Tick>,
    pub tick_started_at: Option<DateTime<Utc>>,
    pub next_tick_at: Option<DateTime<Utc>>,
    pub tick_length_ms: u64,
    pub drill_starts_at: Option<DateTime<Utc>>,
    pub drill_ends_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn schedule() -> Schedule {
        Schedule {
            start: Utc.with_ymd_and_hms(2026, 10, 1, 9, 0, 0).unwrap(),
            tick_length: Duration::from_secs(60),
            duration: Duration::from_secs(150),
        }
    }

    #[test]
    fn a_running_tick_counts_down_to_the_next_one() {
        let s = schedule();
        let c = s.clock(Some(Tick(1)), false, s.start + chrono::Duration::seconds(70));
        assert_eq!(c.phase, ClockPhase::Running);
        assert_eq!(c.tick_started_at, Some(s.start + chrono::Duration::seconds(60)));
        assert_eq!(c.next_tick_at(), Some(s.start + chrono::Duration::seconds(120)));
    }

    #[test]
    fn the_last_tick_ends_with_the_drill() {
        let s = schedule();
        let c = s.clock(Some(Tick(2)), false, s.start + chrono::Duration::seconds(130));
        assert_eq!(c.next_tick_at(), Some(s.start + chrono::Duration::seconds(150)));
    }

    #[test]
    fn phases_outside_the_drill() {
        let s = schedule();
        let before = s.clock(None, false, s.start - chrono::Duration::seconds(5));
        assert_eq!(before.phase, ClockPhase::NotStarted);
        assert_eq!(before.next_tick_at(), Some(s.start));
        let after = s.clock(None, false, s.start + chrono::Duration::seconds(500));
        assert_eq!(after.phase, ClockPhase::Over);
        assert_eq!(after.next_tick_at(), None);
        assert_eq!(s.clock(Some(Tick(0)), true, s.start).phase, ClockPhase::Paused);
        assert_eq!(DrillClock::unscheduled(Duration::from_secs(60)).next_tick_at(), None);
    }
}
