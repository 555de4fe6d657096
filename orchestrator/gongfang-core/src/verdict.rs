//! What a checker concluded about a team's service, and whose fault it is.

crate::named_enum! {
    /// The outcome of one checker action, or of a whole tick for one team × service.
    ///
    /// `Mumble`, `Corrupt` and `Down` are the team's service's fault. `CheckerError` is ours
    /// (a checker trapped, timed out or hit a limit) and never costs the team points.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum Verdict {
        /// The service works and holds its flags.
        Ok = "ok",
        /// The service answered, but wrongly.
        Mumble = "mumble",
        /// The service works but a planted flag is missing or altered.
        Corrupt = "corrupt",
        /// The service could not be reached or did not answer in time.
        Down = "down",
        /// The checker itself failed; says nothing about the service.
        CheckerError = "checker-error",
    }
}

impl Verdict {
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

    /// The one letter that stands for this verdict in compact series (`/api/history/TEAM`, the
    /// drill's export): `o`k, `m`umble, `c`orrupt, `d`own, checker `e`rror. A tick without
    /// checks is [`Verdict::NOT_CHECKED`].
    pub fn letter(self) -> char {
        match self {
            Verdict::Ok => 'o',
            Verdict::Mumble => 'm',
            Verdict::Corrupt => 'c',
            Verdict::Down => 'd',
            Verdict::CheckerError => 'e',
        }
    }

    /// The verdict a letter of [`Verdict::letter`] stands for.
    pub fn from_letter(letter: char) -> Option<Verdict> {
        Verdict::ALL.iter().copied().find(|v| v.letter() == letter)
    }

    /// The letter of a tick without checks in a compact series (the drill was paused).
    pub const NOT_CHECKED: char = '-';

    /// Whether this verdict is the team's fault (and so may cost it SLA points).
    pub fn is_teams_fault(self) -> bool {
        matches!(self, Verdict::Mumble | Verdict::Corrupt | Verdict::Down)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_round_trip_and_differ() {
        for &v in Verdict::ALL {
            assert_eq!(Verdict::from_letter(v.letter()), Some(v));
            assert_ne!(v.letter(), Verdict::NOT_CHECKED);
        }
        let letters: std::collections::HashSet<char> = Verdict::ALL.iter().map(|v| v.letter()).collect();
        assert_eq!(letters.len(), Verdict::ALL.len());
        assert_eq!(Verdict::from_letter(Verdict::NOT_CHECKED), None);
    }

    #[test]
    fn names_round_trip() {
        for &v in Verdict::ALL {
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
