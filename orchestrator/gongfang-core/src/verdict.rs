//! What a checker concluded about a team's service, and whose fault it is.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The outcome of one checker action, or of a whole tick for one team × service.
///
/// `Mumble`, `Corrupt` and `Down` are the team's service's fault. `CheckerError` is ours
/// (a checker trapped, timed out or hit a limit) and never costs the team points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The service works and holds its flags.
    Ok,
    /// The service answered, but wrongly.
    Mumble,
    /// The service works but a planted flag is missing or altered.
    Corrupt,
    /// The service could not be reached or did not answer in time.
    Down,
    /// The checker itself failed; says nothing about the service.
    CheckerError,
}

impl Verdict {
    /// Every verdict, in a stable order (for tables and tests).
    pub const ALL: [Verdict; 5] =
        [Verdict::Ok, Verdict::Mumble, Verdict::Corrupt, Verdict::Down, Verdict::CheckerError];

    /// How bad a verdict is when combining a tick's actions: the worst one wins.
    ///
    /// `CheckerError` ranks just above `Ok`: when any action shows the service failing, that
    /// failure is the tick's verdict; when the only problem was our checker, the tick is
    /// `CheckerError` and the team keeps its SLA.
    pub fn severity(self) -> u8 {
        match self {
            Verdict::Ok => 0,
            Verdict::CheckerError => 1,
            Verdict::Corrupt => 2,
            Verdict::Mumble => 3,
            Verdict::Down => 4,
        }
    }

    /// The worse of two verdicts.
    pub fn worst(self, other: Verdict) -> Verdict {
        if other.severity() > self.severity() { other } else { self }
    }

    /// Whether this verdict is the team's fault (and so may cost it SLA points).
    pub fn is_teams_fault(self) -> bool {
        matches!(self, Verdict::Mumble | Verdict::Corrupt | Verdict::Down)
    }

    /// The stable lowercase name used in the database, the API and the UI.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Mumble => "mumble",
            Verdict::Corrupt => "corrupt",
            Verdict::Down => "down",
            Verdict::CheckerError => "checker-error",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no verdict.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown verdict `{0}`; expected one of ok, mumble, corrupt, down, checker-error")]
pub struct UnknownVerdict(pub String);

impl FromStr for Verdict {
    type Err = UnknownVerdict;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Verdict::ALL.into_iter().find(|v| v.as_str() == s).ok_or_else(|| UnknownVerdict(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for v in Verdict::ALL {
            assert_eq!(v.as_str().parse::<Verdict>(), Ok(v));
        }
        assert!("OK".parse::<Verdict>().is_err());
    }

    #[test]
    fn worst_prefers_the_teams_failure_over_our_error() {
        assert_eq!(Verdict::CheckerError.worst(Verdict::Down), Verdict::Down);
        assert_eq!(Verdict::Ok.worst(Verdict::CheckerError), Verdict::CheckerError);
        assert_eq!(Verdict::Corrupt.worst(Verdict::Mumble), Verdict::Mumble);
        assert_eq!(Verdict::Ok.worst(Verdict::Ok), Verdict::Ok);
        assert!(!Verdict::CheckerError.is_teams_fault());
    }
}
