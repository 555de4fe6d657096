//! What one team's service wrote, for the judges: the timestamped stdout and stderr lines of
//! its containers (the service's own and its sidecars) between two instants, oldest first.
//!
//! Containers are found by the labels the orchestrator gives them ([`crate::labels`]), stopped
//! ones included, since a crashed service's last words are often what a judge looks for. The
//! engine filters by whole seconds (`since`/`until`); the exact window is applied here. On
//! Swarm, only the task containers on the node this connection reaches are seen.
//!
//! A service controls what it writes, so reading it is bounded: a line is cut at
//! [`MAX_LINE_BYTES`] (and marked `truncated`), however long the service made it, also when it
//! never ends it; the rest of such a line is skipped, never held. The engine keeps only the
//! newest part of a container's output (rotated files, the scenario's `[logs]` table), and
//! [`ServiceLogs::retention`] says when a window starts before what is still kept.

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

/// Longest text of one line given to the judges; a longer line is cut here and marked. The
/// engine itself stores a line in parts of 16 KiB.
pub const MAX_LINE_BYTES: usize = 16 << 10;

/// One line a container of the service wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    /// When the engine received the line.
    pub at: DateTime<Utc>,
    /// `main` for the service's own container, else the sidecar's name (e.g. `db`).
    pub component: String,
    pub stream: LogStream,
    /// The line without its end-of-line; a line the engine stored in parts (over 16 KiB) is
    /// joined again, up to [`MAX_LINE_BYTES`].
    pub text: String,
    /// Whether the line was longer than [`MAX_LINE_BYTES`] (or never ended) and was cut.
    pub truncated: bool,
}

/// How long after its creation a container's first line may come and still be its first (a
/// loaded engine starts a container a few seconds after making it).
const STARTUP: chrono::Duration = chrono::Duration::seconds(10);

/// Where the engine's kept logs of a service start, when a window asks for older lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Retention {
    /// The oldest line still kept of the container named below: nothing it wrote before this
    /// instant can be shown any more.
    pub kept_from: DateTime<Utc>,
    /// `main` or the sidecar's name.
    pub component: String,
    /// The container's log limits as the engine reports them (`max-size`, `max-file`).
    pub max_size: Option<String>,
    pub max_files: Option<String>,
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

    /// Whether the window starting at `from` asks for lines the engine no longer keeps: the
    /// latest start of what is kept among the service's containers that began before it, or
    /// `None` when every container still holds all it wrote since `from`.
    ///
    /// A container's kept log starts at its oldest line; when that line is later than `from`
    /// and came well after the container was created, older lines were rotated away (or the
    /// container was silent until then, in which case nothing older is missing either way).
    #[instrument(skip(self), fields(drill = %self.drill))]
    pub async fn retention(&self, team: &str, service: &str, from: DateTime<Utc>) -> Result<Option<Retention>> {
        let mut latest: Option<Retention> = None;
        for (name, component) in self.containers(team, service).await? {
            let oldest = match self.oldest_kept(&name).await {
                Ok(Some(at)) => at,
                // Nothing kept, or removed since it was listed: nothing was rotated away.
                Ok(None) | Err(Error::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            if oldest <= from || latest.as_ref().is_some_and(|l| l.kept_from >= oldest) {
                continue;
            }
            let container = match self.docker.inspect_container(&name, None).await {
                Ok(c) => c,
                Err(e) if is_not_found(&e) => continue,
                Err(e) => return Err(Error::docker(format!("inspect {name}"))(e)),
            };
            // A first line written within moments of the container's creation is its very
            // first one: nothing older ever existed (a container made after `from`, a reset).
            let created = container.created.as_deref().and_then(|c| DateTime::parse_from_rfc3339(c).ok());
            if created.is_some_and(|c| oldest <= c.with_timezone(&Utc) + STARTUP) {
                continue;
            }
            let options = container.host_config.and_then(|h| h.log_config).and_then(|l| l.config).unwrap_or_default();
            latest = Some(Retention {
                kept_from: oldest,
                component,
                max_size: options.get("max-size").cloned(),
                max_files: options.get("max-file").cloned(),
            });
        }
        Ok(latest)
    }

    /// The instant of the oldest line the engine still keeps of one container.
    async fn oldest_kept(&self, name: &str) -> Result<Option<DateTime<Utc>>> {
        let options = LogsOptionsBuilder::new().stdout(true).stderr(true).timestamps(true).build();
        let mut frames = self.docker.logs(name, Some(options));
        // Only the first frame is read; dropping the stream closes the request.
        while let Some(frame) = frames.next().await {
            let message = match frame {
                Ok(LogOutput::StdOut { message } | LogOutput::StdErr { message } | LogOutput::Console { message }) => {
                    message
                }
                Ok(LogOutput::StdIn { .. }) => continue,
                Err(e) if is_not_found(&e) => return Err(Error::NotFound(name.to_owned())),
                Err(e) => return Err(Error::docker(format!("read the logs of {name}"))(e)),
            };
            return Ok(parse_frame(&message).map(|(at, _, _)| at));
        }
        Ok(None)
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
        let mut joiner = Joiner::default();
        let keep = |lines: &mut Vec<LogLine>, (stream, at, text, truncated): Joined| {
            if from <= at && at <= to {
                lines.push(LogLine { at, component: component.to_owned(), stream, text, truncated });
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
            if let Some(line) = joiner.push(stream, at, &text, complete) {
                keep(&mut lines, line);
            }
        }
        // A last line the container never ended.
        for line in joiner.finish() {
            keep(&mut lines, line);
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

/// A line out of the joiner: stream, instant of its first part, text, whether it was cut.
type Joined = (LogStream, DateTime<Utc>, String, bool);

/// Joins the parts the engine stored a long line in, holding at most [`MAX_LINE_BYTES`] per
/// stream: what a line has beyond that is dropped as it arrives, so a service that never ends
/// its line costs the reader nothing more than one full line.
#[derive(Debug, Default)]
struct Joiner {
    partial: HashMap<LogStream, (DateTime<Utc>, String, bool)>,
}

impl Joiner {
    /// Takes one part; gives the line it ends, if it ends one (`complete`).
    fn push(&mut self, stream: LogStream, at: DateTime<Utc>, text: &str, complete: bool) -> Option<Joined> {
        let (first_at, mut line, mut truncated) =
            self.partial.remove(&stream).unwrap_or_else(|| (at, String::new(), false));
        truncated |= !append_bounded(&mut line, text);
        if complete {
            Some((stream, first_at, line, truncated))
        } else {
            self.partial.insert(stream, (first_at, line, truncated));
            None
        }
    }

    /// The lines still open when the output ended: never ended by the container, so cut.
    fn finish(self) -> impl Iterator<Item = Joined> {
        self.partial.into_iter().map(|(stream, (at, text, _))| (stream, at, text, true))
    }
}

/// Appends as much of `text` as fits in [`MAX_LINE_BYTES`], cut at a character boundary;
/// whether all of it fitted.
fn append_bounded(line: &mut String, text: &str) -> bool {
    let room = MAX_LINE_BYTES.saturating_sub(line.len());
    if text.len() <= room {
        line.push_str(text);
        return true;
    }
    let mut cut = room;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    line.push_str(&text[..cut]);
    false
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

    fn at(s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 1, 8, 0, s).unwrap()
    }

    #[test]
    fn parts_are_joined_up_to_the_bound_and_cut_beyond() {
        let mut j = Joiner::default();
        // Two parts and an end: joined, whole.
        assert_eq!(j.push(LogStream::Stdout, at(1), "abc", false), None);
        assert_eq!(
            j.push(LogStream::Stderr, at(2), "err", true),
            Some((LogStream::Stderr, at(2), "err".into(), false))
        );
        assert_eq!(
            j.push(LogStream::Stdout, at(3), "def", true),
            Some((LogStream::Stdout, at(1), "abcdef".into(), false))
        );
        // A line of exactly the bound is whole.
        let exact = "x".repeat(MAX_LINE_BYTES);
        let (_, _, text, cut) = j.push(LogStream::Stdout, at(4), &exact, true).unwrap();
        assert_eq!((text.len(), cut), (MAX_LINE_BYTES, false));
    }

    #[test]
    fn an_endless_line_holds_one_bound_of_memory_and_is_marked() {
        let mut j = Joiner::default();
        let part = "y".repeat(16 << 10);
        // 64 MiB of parts without an end-of-line: what is held never passes the bound.
        for k in 0..4096 {
            assert_eq!(j.push(LogStream::Stdout, at(5), &part, false), None);
            if k % 512 == 0 {
                let held = &j.partial[&LogStream::Stdout].1;
                assert!(held.len() <= MAX_LINE_BYTES && held.capacity() <= 2 * MAX_LINE_BYTES, "{}", held.capacity());
            }
        }
        let (stream, first, text, cut) = j.push(LogStream::Stdout, at(9), "end", true).unwrap();
        assert_eq!((stream, first, text.len(), cut), (LogStream::Stdout, at(5), MAX_LINE_BYTES, true));
        // The next line starts afresh.
        assert_eq!(
            j.push(LogStream::Stdout, at(10), "next", true),
            Some((LogStream::Stdout, at(10), "next".into(), false))
        );
        // A line the output ended without an end-of-line is given, and marked cut.
        assert_eq!(j.push(LogStream::Stderr, at(11), "never ended", false), None);
        assert_eq!(j.finish().collect::<Vec<_>>(), vec![(LogStream::Stderr, at(11), "never ended".into(), true)]);
    }

    #[test]
    fn a_cut_never_splits_a_character() {
        let mut line = "a".repeat(MAX_LINE_BYTES - 1);
        assert!(!append_bounded(&mut line, "攻防"));
        assert_eq!(line.len(), MAX_LINE_BYTES - 1, "a 3-byte character does not fit in 1 byte");
        let mut line = String::new();
        assert!(!append_bounded(&mut line, &"攻".repeat(MAX_LINE_BYTES)));
        assert!(line.len() <= MAX_LINE_BYTES && line.len() > MAX_LINE_BYTES - 3);
        assert!(line.chars().all(|c| c == '攻'));
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
