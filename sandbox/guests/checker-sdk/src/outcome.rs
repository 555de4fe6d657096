//! Verdicts as Rust values: a checker returns `Ok` or a [`Failure`] that blames the service.

use std::fmt;

/// The result type of every checker function.
pub type Outcome<T> = Result<T, Failure>;

/// How a service failed. A checker's own bugs are not here: they panic, and the host records
/// `checker-error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The service answered, but wrongly.
    Mumble,
    /// A planted flag is missing or altered.
    Corrupt,
    /// The service could not be reached or did not answer in time.
    Down,
}

/// A service failure: its status, the message the team sees, and details for organisers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub status: Status,
    /// Shown to the team. Say what failed ("login does not work"), not how the checker works.
    pub public: String,
    /// Organisers only.
    pub private: Vec<String>,
}

impl Failure {
    fn new(status: Status, public: impl Into<String>) -> Failure {
        Failure { status, public: public.into(), private: Vec::new() }
    }

    /// The service answered, but wrongly.
    pub fn mumble(public: impl Into<String>) -> Failure {
        Failure::new(Status::Mumble, public)
    }

    /// A planted flag is missing or altered.
    pub fn corrupt(public: impl Into<String>) -> Failure {
        Failure::new(Status::Corrupt, public)
    }

    /// The service could not be reached or did not answer in time.
    pub fn down(public: impl Into<String>) -> Failure {
        Failure::new(Status::Down, public)
    }

    /// Replaces the public message with one that says which feature failed, keeping the
    /// status and the private lines (the raw answer stays in the organisers' log).
    pub fn context(mut self, public: impl Into<String>) -> Failure {
        let detail = std::mem::replace(&mut self.public, public.into());
        self.private.insert(0, detail);
        self
    }

    /// Adds a line for organisers (what was sent, what came back).
    pub fn with_private(mut self, line: impl Into<String>) -> Failure {
        self.private.push(line.into());
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.status, self.public)
    }
}

/// What `put` hands back to the platform.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Planted {
    /// Public attack info, e.g. the user name that holds the flag. Empty when the service
    /// needs none.
    pub flag_id: String,
    /// Private state for the matching `get`, e.g. that user's password.
    pub state: Vec<u8>,
}

/// Gives a failure whose public message is English only (the SDK's own: connection trouble,
/// an answer that is not HTTP) a short bilingual one, English then Hong Kong Chinese; the
/// original moves to the private log. A message that already has both (`English / 中文`) is
/// kept. A checker whose own messages are bilingual wraps each action in it.
pub fn bilingual<T>(outcome: Outcome<T>) -> Outcome<T> {
    outcome.map_err(|failure| {
        if failure.public.contains(" / ") {
            return failure;
        }
        let public = match failure.status {
            Status::Down if failure.public.contains("timed out") => "Service timed out / 服務逾時",
            Status::Down => "Service unreachable / 無法連接服務",
            Status::Mumble => "Unexpected answer / 回應異常",
            Status::Corrupt => "Flag missing / 旗幟遺失",
        };
        failure.context(public)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_only_messages_become_bilingual() {
        let cases = [
            (Failure::down("port 8080 refuses connections"), "Service unreachable / 無法連接服務"),
            (Failure::down("connecting to port 8080 timed out"), "Service timed out / 服務逾時"),
            (Failure::mumble("answer to GET /api/me is not JSON"), "Unexpected answer / 回應異常"),
            (Failure::mumble("Login failed / 登入失敗"), "Login failed / 登入失敗"),
        ];
        for (failure, public) in cases {
            let original = failure.public.clone();
            let got = bilingual::<()>(Err(failure)).unwrap_err();
            assert_eq!(got.public, public);
            if original != public {
                assert_eq!(got.private, vec![original], "the SDK's words stay in the private log");
            }
        }
    }
}

/// Turns an unexpected answer into `mumble` with a public message and the raw answer in the
/// private log.
pub(crate) fn unexpected(what: &str, got: &[u8]) -> Failure {
    let shown: String = String::from_utf8_lossy(got).chars().take(200).collect();
    Failure::mumble(format!("unexpected answer to {what}")).with_private(format!("{what}: got {shown:?}"))
}
