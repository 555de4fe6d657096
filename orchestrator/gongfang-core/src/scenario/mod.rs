//! Scenario files: the TOML an organiser writes, its validation, and the typed model.

mod model;
pub use model::*;
