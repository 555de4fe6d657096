//! The game's clock as the submission server sees it: the current tick and whether flags count.

use gongfang_core::Tick;

/// Where the drill is; only `Running` accepts flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before tick 0.
    NotStarted,
    /// Ticks are running.
    Running,
    /// An organiser paused the drill.
    Paused,
    /// The drill has ended.
    Over,
}

/// Published by the game engine on a `tokio::sync::watch` channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GameClock {
    /// The current tick (submissions are recorded in it).
    pub tick: Tick,
    pub phase: Phase,
}

impl GameClock {
    /// A running drill at `tick`.
    pub fn running(tick: Tick) -> GameClock {
        GameClock { tick, phase: Phase::Running }
    }
}
