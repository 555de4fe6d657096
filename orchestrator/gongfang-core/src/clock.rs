//! The drill's time: the running tick, when the next one starts, whether the drill is paused
//! or over. The binary publishes one [`DrillClock`] on a `tokio::sync::watch` channel; the
//! submission servers and the scoreboard read the same one.

use std::time::Duration;

use crate::ids::Tick;
use chrono::{DateTime, Utc};

crate::named_enum! {
    /// Where the drill stands; only `Running` accepts flags.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum Phase {
        /// Before tick 0.
        NotStarted = "not_started",
        /// Ticks are running.
        Running = "running",
        /// An organiser paused the drill; ticks pass without checks.
        Paused = "paused",
        /// The drill has ended.
        Over = "over",
    }
}

/// The game clock: the tick flags are recorded in, and what the scoreboard's countdown counts
/// down to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrillClock {
    pub phase: Phase,
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
            phase: Phase::NotStarted,
            tick: None,
            tick_started_at: None,
            tick_length,
            drill_starts_at: None,
            drill_ends_at: None,
        }
    }

    /// A drill running `tick`, with no schedule (tests, benchmarks, the example server).
    pub fn running(tick: Tick, tick_length: Duration) -> DrillClock {
        DrillClock { phase: Phase::Running, tick: Some(tick), ..DrillClock::unscheduled(tick_length) }
    }

    /// The tick a flag submitted now is recorded in: the running one (tick 0 before any).
    pub fn current_tick(&self) -> Tick {
        self.tick.unwrap_or(Tick(0))
    }

    /// When the next tick starts: the end of the running tick, or the drill's start.
    pub fn next_tick_at(&self) -> Option<DateTime<Utc>> {
        match self.phase {
            Phase::NotStarted => self.drill_starts_at,
            Phase::Running | Phase::Paused => {
                let started = self.tick_started_at?;
                let next = started + chrono::Duration::from_std(self.tick_length).ok()?;
                Some(match self.drill_ends_at {
                    Some(end) if end < next => end,
                    _ => next,
                })
            }
            Phase::Over => None,
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

    /// The clock given the engine's running tick (`None` before it runs one), whether an
    /// organiser has paused it, and whether the engine has finished the drill.
    pub fn clock(&self, current: Option<Tick>, paused: bool, over: bool) -> DrillClock {
        let ends = self.end();
        let current = if over { None } else { current };
        let phase = match current {
            _ if over => Phase::Over,
            Some(_) if paused => Phase::Paused,
            Some(_) => Phase::Running,
            None => Phase::NotStarted,
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
        let c = s.clock(Some(Tick(1)), false, false);
        assert_eq!(c.phase, Phase::Running);
        assert_eq!(c.tick_started_at, Some(s.start + chrono::Duration::seconds(60)));
        assert_eq!(c.next_tick_at(), Some(s.start + chrono::Duration::seconds(120)));
    }

    #[test]
    fn the_last_tick_ends_with_the_drill() {
        let s = schedule();
        let c = s.clock(Some(Tick(2)), false, false);
        assert_eq!(c.next_tick_at(), Some(s.start + chrono::Duration::seconds(150)));
    }

    #[test]
    fn phases_outside_the_drill() {
        let s = schedule();
        let before = s.clock(None, false, false);
        assert_eq!(before.phase, Phase::NotStarted);
        assert_eq!(before.next_tick_at(), Some(s.start));
        let after = s.clock(Some(Tick(2)), false, true);
        assert_eq!(after.phase, Phase::Over);
        assert_eq!(after.next_tick_at(), None);
        assert_eq!(after.tick, None);
        assert_eq!(s.clock(Some(Tick(0)), true, false).phase, Phase::Paused);
        assert_eq!(DrillClock::unscheduled(Duration::from_secs(60)).next_tick_at(), None);
    }
}
