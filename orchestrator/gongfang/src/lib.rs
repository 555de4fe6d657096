//! The organisers' binary as a library: the pieces `main` wires together that tests also drive
//! (the checker runner over the wasm sandbox, the running drill, preparing a scenario, scenario
//! files, organisers' restarts and resets of teams' services, defenders' shells, submitted
//! patches, the drill's export and its teams' after-action reports).

pub mod after_action;
pub mod checker_runner;
pub mod drill;
pub mod export;
pub mod judge_logs;
pub mod limits;
pub mod patches;
pub mod prepare;
pub mod scenario_file;
pub mod service_control;
pub mod shell;
