//! Every answer a submission can get, with its protocol code and messages: the one table.
//!
//! TCP messages follow FAUST CTF's server; HTTP messages contain the words DestructiveFarm and
//! similar farms classify on (`accepted`, `invalid flag`, `too old`, `your own`,
//! `already submitted`; `game not started`, `game over`, `try again later` keep a flag queued).

gongfang_core::named_enum! {
    /// The FAUST / ENOWARS answer codes.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum Code {
        Ok = "OK",
        Dup = "DUP",
        Own = "OWN",
        Old = "OLD",
        Inv = "INV",
        Err = "ERR",
    }
}

/// The verdict on one submitted flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Answer {
    /// Stored and committed; it scores.
    Accepted,
    /// This team submitted this flag before.
    Duplicate,
    /// The flag belongs to the submitting team.
    Own,
    /// The flag's lifetime is over.
    Old,
    /// Not a flag of this drill (shape, tag, or no such victim).
    Invalid,
    /// A flag of the NOP team, which exists only to prove services exploitable.
    Nop,
    /// The line exceeded the length limit; it was not read in full.
    TooLong,
    /// The drill has not started.
    NotStarted,
    /// The drill is paused.
    Paused,
    /// The drill has ended.
    Over,
    /// The team is a defender only; defenders do not submit flags. Worded as an invalid flag,
    /// so farms stop sending it.
    NotAttacker,
    /// Our storage failed; the flag was not stored and may be submitted again.
    Unavailable,
    /// Our storage did not confirm the flag in time (farms stop waiting after a few seconds).
    /// Sent again, it is answered `OK`, or `DUP` if the commit under way stored it after all.
    Busy,
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    pub code: Code,
    /// After `FLAG CODE ` on a TCP line.
    pub tcp: &'static str,
    /// The `msg` of an HTTP answer item.
    pub http: &'static str,
}

impl Answer {
    /// Every answer, in a stable order (for docs and tests).
    pub const ALL: [Answer; 13] = [
        Answer::Accepted,
        Answer::Duplicate,
        Answer::Own,
        Answer::Old,
        Answer::Invalid,
        Answer::Nop,
        Answer::TooLong,
        Answer::NotStarted,
        Answer::Paused,
        Answer::Over,
        Answer::NotAttacker,
        Answer::Unavailable,
        Answer::Busy,
    ];

    /// The table.
    pub const fn reply(self) -> Reply {
        let (code, tcp, http) = match self {
            Answer::Accepted => (Code::Ok, "Accepted", "Accepted"),
            Answer::Duplicate => (Code::Dup, "You already submitted this flag", "Denied: flag already submitted"),
            Answer::Own => (Code::Own, "This is your own flag", "Denied: flag is your own"),
            Answer::Old => (Code::Old, "This flag is too old", "Denied: flag is too old"),
            Answer::Invalid => (Code::Inv, "Invalid flag", "Denied: invalid flag"),
            Answer::Nop => (
                Code::Inv,
                "You cannot submit flags of a NOP team",
                "Denied: invalid flag, you cannot submit flags of a NOP team",
            ),
            Answer::TooLong => (Code::Inv, "Invalid flag: line too long", "Denied: invalid flag, too long"),
            Answer::NotStarted => {
                (Code::Err, "Competition has not started yet", "Denied: game not started, try again later")
            }
            Answer::Paused => (Code::Err, "Competition is paused", "Denied: game paused, try again later"),
            Answer::Over => (Code::Err, "Competition is over", "Denied: game over"),
            // INV, not ERR, and the words `invalid flag`: farms retry an ERR or an answer they
            // cannot classify, and a defender's flags will never count, however often sent.
            Answer::NotAttacker => (
                Code::Inv,
                "Invalid flag, your team is a defender and cannot submit flags",
                "Denied: invalid flag, your team is a defender and cannot submit flags",
            ),
            Answer::Unavailable => (
                Code::Err,
                "Internal error, flag not stored, try again later",
                "Denied: internal error, try again later",
            ),
            Answer::Busy => (
                Code::Err,
                "Storage busy, flag not confirmed, try again later",
                "Denied: storage busy, flag not confirmed, try again later",
            ),
        };
        Reply { code, tcp, http }
    }

    pub fn code(self) -> Code {
        self.reply().code
    }

    /// The answer's name in `/metrics` (`accepted`, `too_long`, …), finer than its code.
    pub const fn name(self) -> &'static str {
        match self {
            Answer::Accepted => "accepted",
            Answer::Duplicate => "duplicate",
            Answer::Own => "own",
            Answer::Old => "old",
            Answer::Invalid => "invalid",
            Answer::Nop => "nop",
            Answer::TooLong => "too_long",
            Answer::NotStarted => "not_started",
            Answer::Paused => "paused",
            Answer::Over => "over",
            Answer::NotAttacker => "not_attacker",
            Answer::Unavailable => "unavailable",
            Answer::Busy => "busy",
        }
    }

    /// Whether the flag is now stored and counted for this team (`OK` or `DUP`).
    pub fn is_stored(self) -> bool {
        matches!(self, Answer::Accepted | Answer::Duplicate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The words farms classify on, checked the way DestructiveFarm does (lowercase substring,
    /// queued words first).
    #[test]
    fn http_messages_classify_as_farms_expect() {
        const QUEUED: [&str; 6] =
            ["timeout", "game not started", "try again later", "game over", "is not up", "no such flag"];
        const ACCEPTED: [&str; 2] = ["accepted", "congrat"];
        const REJECTED: [&str; 9] = [
            "bad",
            "wrong",
            "expired",
            "unknown",
            "your own",
            "too old",
            "not in database",
            "already submitted",
            "invalid flag",
        ];
        let class = |msg: &str| {
            let m = msg.to_lowercase();
            if QUEUED.iter().any(|w| m.contains(w)) {
                "queued"
            } else if ACCEPTED.iter().any(|w| m.contains(w)) {
                "accepted"
            } else if REJECTED.iter().any(|w| m.contains(w)) {
                "rejected"
            } else {
                "unknown"
            }
        };
        for a in Answer::ALL {
            let expected = match a {
                Answer::Accepted => "accepted",
                Answer::NotStarted | Answer::Paused | Answer::Over | Answer::Unavailable | Answer::Busy => "queued",
                _ => "rejected",
            };
            assert_eq!(class(a.reply().http), expected, "{a:?}");
            // The TCP message in ForcAD mode is classified the same way.
            if a != Answer::Nop {
                let tcp_class = class(a.reply().tcp);
                assert!(tcp_class == expected || (expected == "queued" && tcp_class == "unknown"), "{a:?}");
            }
        }
    }

    #[test]
    fn codes_are_the_protocol_words() {
        assert_eq!(Answer::Accepted.code().as_str(), "OK");
        assert_eq!(Answer::Nop.reply().tcp, "You cannot submit flags of a NOP team");
        assert_eq!(Answer::Over.reply().tcp, "Competition is over");
        assert!(Answer::ALL.iter().all(|a| !a.reply().tcp.contains('\n')));
        // FAUST-protocol farms that read only the code give up on INV and retry ERR.
        assert_eq!(Answer::NotAttacker.code(), Code::Inv);
        for text in [Answer::NotAttacker.reply().tcp, Answer::NotAttacker.reply().http] {
            assert!(text.to_lowercase().contains("invalid flag"), "{text}");
            assert!(text.contains("defender"), "the reason stays: {text}");
        }
    }
}
