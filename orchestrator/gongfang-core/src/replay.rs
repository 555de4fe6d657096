//! Exploit replay: each tick the platform runs a service's reference exploit (its checker's
//! `exploit`) against every defending team's live service and records whether the newest flag
//! fell. This is how a patch is seen, live or submitted.

use chrono::{DateTime, Utc};

use crate::ids::{ServiceId, StoreIdx, TeamId, Tick};
use crate::verdict::Verdict;

crate::named_enum! {
    /// What one replay of the reference exploit showed about a team's service.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum Exposure {
        /// The exploit captured the flag it went for.
        Exploitable = "exploitable",
        /// The service answered and the exploit captured nothing of it.
        NotExploitable = "not-exploitable",
        /// The service was down or answered wrongly, or the checker failed: nothing is known,
        /// and it never counts as patched.
        Unknown = "unknown",
    }
}

impl Exposure {
    /// What an `exploit` action that ended with `verdict` and captured `captured` shows about
    /// the service holding `flag`.
    pub fn of(verdict: Verdict, captured: &[String], flag: &str) -> Exposure {
        match verdict {
            Verdict::Ok if captured.iter().any(|c| c == flag) => Exposure::Exploitable,
            Verdict::Ok => Exposure::NotExploitable,
            _ => Exposure::Unknown,
        }
    }
}

/// One replay of the reference exploit, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExploitReplay {
    /// The tick it ran in; it went for the flag planted in the tick before.
    pub tick: Tick,
    pub team: TeamId,
    pub service: ServiceId,
    pub store: StoreIdx,
    pub exposure: Exposure,
    /// The checker's public message, for organisers and the team.
    pub message: String,
    pub recorded_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_captured_flag_is_exploitable_and_only_a_working_service_is_not() {
        let flag = "GONGFANG{abc}";
        let got = vec!["GONGFANG{other}".to_owned(), flag.to_owned()];
        assert_eq!(Exposure::of(Verdict::Ok, &got, flag), Exposure::Exploitable);
        assert_eq!(Exposure::of(Verdict::Ok, &got[..1], flag), Exposure::NotExploitable);
        assert_eq!(Exposure::of(Verdict::Ok, &[], flag), Exposure::NotExploitable);
        for verdict in [Verdict::Down, Verdict::Mumble, Verdict::Corrupt, Verdict::CheckerError] {
            assert_eq!(Exposure::of(verdict, &got, flag), Exposure::Unknown, "{verdict:?}");
        }
        assert_eq!(Exposure::from_name("not-exploitable"), Some(Exposure::NotExploitable));
    }
}
