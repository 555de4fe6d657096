//! The drill's clock as the API and the websocket send it: the shared [`DrillClock`] with the
//! server's time, so a browser counts down without trusting its own clock.

use chrono::{DateTime, Utc};
use gongfang_core::Tick;
use gongfang_core::clock::{DrillClock, Phase};
use serde::Serialize;

/// [`DrillClock`] as the API and the websocket send it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ClockView {
    pub now: DateTime<Utc>,
    pub phase: Phase,
    pub tick: Option<Tick>,
    pub tick_started_at: Option<DateTime<Utc>>,
    pub next_tick_at: Option<DateTime<Utc>>,
    pub tick_length_ms: u64,
    pub drill_starts_at: Option<DateTime<Utc>>,
    pub drill_ends_at: Option<DateTime<Utc>>,
}

impl ClockView {
    /// `clock` as seen at `now`.
    pub(crate) fn of(clock: &DrillClock, now: DateTime<Utc>) -> ClockView {
        ClockView {
            now,
            phase: clock.phase,
            tick: clock.tick,
            tick_started_at: clock.tick_started_at,
            next_tick_at: clock.next_tick_at(),
            tick_length_ms: u64::try_from(clock.tick_length.as_millis()).unwrap_or(u64::MAX),
            drill_starts_at: clock.drill_starts_at,
            drill_ends_at: clock.drill_ends_at,
        }
    }
}
