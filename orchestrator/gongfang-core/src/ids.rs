//! Small typed identifiers, so a team number is never mistaken for a tick.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A team's number, stable for the whole drill (it appears in flags and addresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TeamId(pub u16);

/// A service's number: its 1-based position in the scenario's service list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ServiceId(pub u8);

/// A unit of game time. Tick 0 is the first tick of the drill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Tick(pub u32);

/// Which of a service's flag stores a flag lives in (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StoreIdx(pub u8);

impl Tick {
    /// The tick after this one.
    pub fn next(self) -> Tick {
        Tick(self.0 + 1)
    }
}

macro_rules! display_inner {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    )*};
}
display_inner!(TeamId, ServiceId, Tick, StoreIdx);
