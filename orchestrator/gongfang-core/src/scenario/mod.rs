//! Scenario files: the TOML an organiser writes, its validation, and the typed model.

mod model;
mod parse;
mod problem;

pub use model::*;
pub use parse::{AssumeEverythingExists, Probe, parse, parse_bytes, parse_duration};
pub use problem::{Problem, Problems};
