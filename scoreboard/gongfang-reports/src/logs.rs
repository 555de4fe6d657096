//! Container logs beside a report: a [`LogSource`] the organisers' binary implements over
//! Docker (this crate links no container runtime), and [`NoLogs`] when there is none.

use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};
use gongfang_core::scenario::{Service, Team};
use serde::Serialize;

/// One line a service's container wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    pub at: DateTime<Utc>,
    /// Which container (a service may run sidecars).
    pub container: String,
    pub line: String,
    /// The service wrote a longer line (or never ended it); `line` is its beginning.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// What a log source has for one window: the lines, and, when the window starts before the
/// oldest line still kept (logs are rotated), since when lines are kept and a plain sentence
/// saying so for the judge.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LogWindow {
    pub lines: Vec<LogLine>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept_from: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
}

impl From<Vec<LogLine>> for LogWindow {
    fn from(lines: Vec<LogLine>) -> LogWindow {
        LogWindow { lines, ..LogWindow::default() }
    }
}

/// A boxed future, so the trait stays object-safe without an extra crate.
pub type LogFuture<'a> = Pin<Box<dyn Future<Output = Result<LogWindow, String>> + Send + 'a>>;

/// Where the judges' view gets a team's service logs from.
///
/// The binary implements it over the Docker engine (the containers of `team` × `service`,
/// lines with timestamps between `from` and `to`, at most `limit`, oldest first, with a notice
/// when `from` is older than what is kept). An error is a message shown to the judge in place
/// of the logs; it never fails the request. The default method returns no lines, so an
/// implementation may leave it out where logs are unavailable.
pub trait LogSource: Send + Sync + 'static {
    fn logs<'a>(
        &'a self,
        team: &'a Team,
        service: &'a Service,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> LogFuture<'a> {
        let _ = (team, service, from, to, limit);
        Box::pin(async { Ok(LogWindow::default()) })
    }
}

/// No logs at all: the default until the binary provides a source.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLogs;

impl LogSource for NoLogs {}
