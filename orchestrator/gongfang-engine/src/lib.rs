//! The game engine: runs the drill's ticks, dispatches checker actions, turns their results
//! into verdicts, scores each closed tick and publishes what happened.
//!
//! The engine owns no IO of its own kind: the clock, the checker runner and the addresses of
//! the teams' services are passed in, so a test drives twenty ticks in simulated time against
//! local processes, and `gongfang up` drives the same code against containers.

mod clock;
mod engine;
mod runner;

pub use clock::{Clock, ManualClock, SystemClock};
pub use engine::{Engine, EngineConfig, EngineError, Step, StepHook, TickReport};
pub use runner::{ActionRequest, CheckerRunner, FlagArgs};
