//! What one team's service wrote, for the judges: the timestamped stdout and stderr lines of
//! its containers (the service's own and its sidecars) between two instants, oldest first.
//!
//! Containers are found by the labels the orchestrator gives them ([`crate::labels`]), stopped
//! ones included, since a crashed service's last words are often what a judge looks for. The
//! engine filters by whole seconds (`since`/`until`); the exact window is applied here. On
//! Swarm, only the task containers on the node this connection reaches are seen.

use std::collections::HashMap;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::query_parameters::{ListContainersOptionsBuilder, LogsOptionsBuilder};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Serialize;
use tracing::{debug, instrument, warn};

use crate::runtime::Engine;
use crate::{Error, Result, is_not_found, labels};

/// Which output of the container a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// One line a container of the service wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    /// When the engine received the line.
    pub at: DateTime<Utc>,
    /// `main` for the service's own container, else the sidecar's name (e.g. `db`).
    pub component: String,
    pub stream: LogStream,
    /// The line without its end-of-line; a line the engine stored in parts (over 16 KiB) is
    /// joined again.
    pub text: String,
}

/// Reads the container logs of one drill's services.
#[derive(Debug, Clone)]
pub struct ServiceLogs {
    docker: Docker,
    drill: String,
}

impl ServiceLogs {
    /// Logs of the containers labelled with `drill` on `engine`.
    pub fn new(engine: &Engine, drill: impl Into<String>) -> Self {
        ServiceLogs { docker: engine.docker().clone(), drill: drill.into() }
    }

    pub fn drill(&self) -> &str {
        &self.drill
    }

    /// The lines `team`'s `service` containers wrote with a timestamp in `from..=to`, at most
    /// `limit`, oldest first; lines of the same instant keep the service's own container first.
    ///
    /// An empty window (`from` after `to`) or a `limit` of 0 gives no lines without asking the
    /// engine. [`Error::NotFound`] if the drill has no container for that team and service.
    #[instrument(skip(self), fields(drill = %self.drill))]
    pub async fn window(
        &self,
        team: &str,
        service: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<LogLine>> {
        if limit == 0 || from > to {
            return Ok(Vec::new());
        }
        let containers = self.containers(team, service).await?;
        if containers.is_empty() {
            return Err(Error::NotFound(format!("gf-{}-{team}-{service}", self.drill)));
        }
        let mut lines = Vec::new();
        for (name, component) in containers {
            match self.container_window(&name, &component, from, to, limit).await {
                Ok(mut found) => lines.append(&mut found),
                // Removed since it was listed (a reset, a teardown): it has nothing left to show.
                Err(Error::NotFound(_)) => debug!(container = name, "gone before its logs were read"),
                Err(e) => return Err(e),
            }
        }
        // Stable: at equal instants, the container order chosen above holds.
        lines.sort_by_key(|l| l.at);
        lines.truncate(limit);
        Ok(lines)
    }

    /// `(name, component)` of every container of the team's service, the service's own first.
    async fn containers(&self, team: &str, service: &str) -> Result<Vec<(String, String)>> {
        let filters = HashMap::from([(
            "label".to_owned(),
            vec![
                format!("{}={}", labels::DRILL, self.drill),
                format!("{}={team}", labels::TEAM),
                format!("{}={service}", labels::SERVICE),
            ],
        )]);
        let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
        let list = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(Error::docker(format!("list the containers of {team}'s {service}")))?;
        let mut found: Vec<(String, String)> = list
            .into_iter()
            .filter_map(|c| {
                let name = c.names.unwrap_or_default().first().map(|n| n.trim_start_matches('/').to_owned()).or(c.id)?;
                let component = c.labels.unwrap_or_default().remove(labels::COMPONENT).unwrap_or_else(|| name.clone());
                Some((name, component))
            })
            .collect();
        found.sort_by(|a, b| (a.1 != "main", &a.1, &a.0).cmp(&(b.1 != "main", &b.1, &b.0)));
        Ok(found)
    }

    /// The first `limit` lines of one container in the window. The engine sends a container's
    /// lines in the order it received them, so reading stops once `limit` are in hand.
    async fn container_window(
        &self,
        name: &str,
        component: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<LogLine>> {
        let (since, until) = engine_bounds(from, to);
        let options =
            LogsOptionsBuilder::new().stdout(true).stderr(true).timestamps(true).since(since).until(until).build();
        let mut frames = self.docker.logs(name, Some(options));
        let mut lines = Vec::new();
        // A line longer than the engine's buffer arrives as parts without an end-of-line.
        let mut partial: HashMap<LogStream, (DateTime<Utc>, String)> = HashMap::new();
        let keep = |lines: &mut Vec<LogLine>, stream, at, text| {
            if from <= at && at <= to {
                lines.push(LogLine { at, component: component.to_owned(), stream, text });
            }
        };
        while lines.len() < limit {
            let Some(frame) = frames.next().await else { break };
            let (stream, message) = match frame {
                Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => (LogStream::Stdout, message),
                Ok(LogOutput::StdErr { message }) => (LogStream::Stderr, message),
                Ok(LogOutput::StdIn { .. }) => continue,
                Err(e) if is_not_found(&e) => return Err(Error::NotFound(name.to_owned())),
                Err(e) => return Err(Error::docker(format!("read the logs of {name}"))(e)),
            };
            let Some((at, text, complete)) = parse_frame(&message) else {
                warn!(container = name, "the engine sent a log line without a timestamp; skipped");
                continue;
            };
            let (at, text) = match partial.remove(&stream) {
                Some((first_at, mut head)) => {
                    head.push_str(&text);
                    (first_at, head)
                }
                None => (at, text),
            };
            if complete {
                keep(&mut lines, stream, at, text);
            } else {
                partial.insert(stream, (at, text));
            }
        }
        // A last line the container never ended.
        for (stream, (at, text)) in partial {
            keep(&mut lines, stream, at, text);
        }
        lines.sort_by_key(|l| l.at);
        lines.truncate(limit);
        Ok(lines)
    }
}

/// The engine's whole-second `since` and `until` that cover `from..=to`; 0 leaves a side open,
/// also where the instant does not fit the API's 32-bit seconds (the exact window is applied
/// to every line anyway).
fn engine_bounds(from: DateTime<Utc>, to: DateTime<Utc>) -> (i32, i32) {
    let since = i32::try_from(from.timestamp()).ok().filter(|s| *s > 0).unwrap_or(0);
    let up = to.timestamp() + i64::from(to.timestamp_subsec_nanos() > 0);
    // A window that ends at or before 1970 still has an `until` of 1 s, not "open".
    let until = i32::try_from(up.max(1)).unwrap_or(0);
    (since, until)
}

/// Splits `<RFC 3339 timestamp> <text>` as the engine sends a line with `timestamps`; the flag
/// says whether the text ended with an end-of-line (else it is the first part of a longer line).
fn parse_frame(message: &[u8]) -> Option<(DateTime<Utc>, String, bool)> {
    let message = String::from_utf8_lossy(message);
    let (stamp, rest) = message.split_once(' ').unwrap_or((message.trim_end_matches('\n'), ""));
    let at = DateTime::parse_from_rfc3339(stamp).ok()?.with_timezone(&Utc);
    let (text, complete) = match rest.strip_suffix('\n') {
        Some(text) => (text.strip_suffix('\r').unwrap_or(text), true),
        None => (rest, false),
    };
    Some((at, text.to_owned(), complete))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn frames_split_into_time_and_text() {
        let (at, text, complete) = parse_frame(b"2025-03-01T08:00:01.123456789Z GET /login 200\n").unwrap();
        assert_eq!(at, Utc.with_ymd_and_hms(2025, 3, 1, 8, 0, 1).unwrap() + chrono::Duration::nanoseconds(123_456_789));
        assert_eq!((text.as_str(), complete), ("GET /login 200", true));
        // Spaces inside the text stay; a part without an end-of-line is marked incomplete.
        let (_, text, complete) = parse_frame(b"2025-03-01T08:00:01Z  two  spaces").unwrap();
        assert_eq!((text.as_str(), complete), (" two  spaces", false));
        assert_eq!(parse_frame(b"2025-03-01T08:00:01Z \n").unwrap().1, "");
        assert!(parse_frame(b"no timestamp here\n").is_none());
    }

    #[test]
    fn engine_bounds_cover_the_window_in_whole_seconds() {
        let from = Utc.timestamp_opt(1_700_000_000, 750_000_000).unwrap();
        let to = Utc.timestamp_opt(1_700_000_010, 1).unwrap();
        assert_eq!(engine_bounds(from, to), (1_700_000_000, 1_700_000_011));
        let exact = Utc.timestamp_opt(1_700_000_010, 0).unwrap();
        assert_eq!(engine_bounds(exact, exact), (1_700_000_010, 1_700_000_010));
        // Beyond 2038 the engine's 32-bit seconds cannot say it: leave that side open.
        let far = Utc.with_ymd_and_hms(2040, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(engine_bounds(far, far), (0, 0));
        assert_eq!(engine_bounds(DateTime::<Utc>::MIN_UTC, Utc.timestamp_opt(0, 0).unwrap()), (0, 1));
    }
}
