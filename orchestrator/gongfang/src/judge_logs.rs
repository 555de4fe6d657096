//! The judges' view of a target's container logs: [`DockerLogs`] answers the reports crate's
//! [`LogSource`] from the drill's containers on the Docker engine, and says plainly when the
//! window asked for starts before the oldest line the engine still keeps (logs are rotated).

use chrono::{DateTime, Utc};
use gongfang_core::scenario::{Service, Team};
use gongfang_docker::{Engine, Retention, ServiceLogs};
use gongfang_reports::{LogFuture, LogLine, LogSource, LogWindow};
use tracing::warn;

/// Container logs of the running drill's services, read from the engine when a judge opens a
/// report.
#[derive(Debug, Clone)]
pub struct DockerLogs {
    logs: ServiceLogs,
}

impl DockerLogs {
    /// Logs of the containers `drill` (the scenario's `drill.slug`) runs on `engine`.
    pub fn new(engine: &Engine, drill: &str) -> Self {
        DockerLogs { logs: ServiceLogs::new(engine, drill) }
    }
}

impl LogSource for DockerLogs {
    fn logs<'a>(
        &'a self,
        team: &'a Team,
        service: &'a Service,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> LogFuture<'a> {
        Box::pin(async move {
            // An attacker-only team runs no services, so there is nothing to read, not an error.
            if !team.role.defends() {
                return Ok(LogWindow::default());
            }
            let read = async {
                let lines = self.logs.window(&team.slug, &service.slug, from, to, limit).await?;
                let retention = self.logs.retention(&team.slug, &service.slug, from).await?;
                Ok::<_, gongfang_docker::Error>(LogWindow {
                    lines: lines.into_iter().map(report_line).collect(),
                    kept_from: retention.as_ref().map(|r| r.kept_from),
                    notice: retention.as_ref().map(notice),
                })
            };
            read.await.map_err(|e| {
                warn!(drill = self.logs.drill(), team = team.slug, service = service.slug, error = %e, "container logs for a judge");
                e.to_string()
            })
        })
    }
}

/// The judges see which container wrote the line (`main` or the sidecar's name).
fn report_line(l: gongfang_docker::LogLine) -> LogLine {
    LogLine { at: l.at, container: l.component, line: l.text, truncated: l.truncated }
}

/// The sentence a judge reads when the window starts before what is kept.
fn notice(r: &Retention) -> String {
    let limits = match (r.max_files.as_deref(), r.max_size.as_deref()) {
        (Some(files), Some(size)) => {
            let size = size.parse::<u64>().map_or_else(|_| size.to_owned(), show_bytes);
            format!(" (each container keeps its newest {files} log files of {size}: the scenario's [logs] table)")
        }
        _ => String::new(),
    };
    format!(
        "Logs before {} are no longer kept: older lines of `{}` were removed by log rotation{limits}.",
        r.kept_from.format("%Y-%m-%d %H:%M:%S UTC"),
        r.component,
    )
}

fn show_bytes(b: u64) -> String {
    match b {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use chrono::TimeZone;
    use gongfang_core::ids::{ServiceId, TeamId};
    use gongfang_core::scenario::{ImageSource, Ipv4Net, Limits, Names, PatchMode, Role};
    use gongfang_docker::{Backend, LogStream};

    use super::*;

    fn names(x: &str) -> Names {
        Names { en: x.into(), zh: x.into() }
    }

    #[test]
    fn lines_name_their_container() {
        let at = Utc.with_ymd_and_hms(2025, 3, 1, 8, 0, 0).unwrap();
        let line = gongfang_docker::LogLine {
            at,
            component: "db".into(),
            stream: LogStream::Stderr,
            text: "FATAL: password authentication failed".into(),
            truncated: false,
        };
        assert_eq!(
            report_line(line),
            LogLine {
                at,
                container: "db".into(),
                line: "FATAL: password authentication failed".into(),
                truncated: false
            }
        );
    }

    #[test]
    fn the_notice_says_since_when_and_why() {
        let r = Retention {
            kept_from: Utc.with_ymd_and_hms(2026, 11, 21, 14, 5, 9).unwrap(),
            component: "main".into(),
            max_size: Some((64u64 << 20).to_string()),
            max_files: Some("8".into()),
        };
        assert_eq!(
            notice(&r),
            "Logs before 2026-11-21 14:05:09 UTC are no longer kept: older lines of `main` were removed by log \
             rotation (each container keeps its newest 8 log files of 64 MiB: the scenario's [logs] table)."
        );
        let unknown = Retention { max_size: None, max_files: None, ..r };
        assert_eq!(
            notice(&unknown),
            "Logs before 2026-11-21 14:05:09 UTC are no longer kept: older lines of `main` were removed by log rotation."
        );
    }

    #[tokio::test]
    async fn attackers_have_no_containers_to_read() {
        // Connecting is lazy: no engine is asked, so this holds with or without Docker.
        let source = DockerLogs::new(&Engine::connect(Backend::Docker).unwrap(), "drill");
        let red = Team {
            id: TeamId(9),
            slug: "red".into(),
            name: names("red"),
            role: Role::Attacker,
            network: Ipv4Net::parse("10.60.9.0/24").unwrap(),
            nop: false,
        };
        let web = Service {
            id: ServiceId(1),
            slug: "web".into(),
            name: names("web"),
            source: ImageSource::Image("web".into()),
            ports: vec![8080],
            checker: PathBuf::from("web.wasm"),
            flag_stores: 1,
            limits: Limits { cpus: 1.0, memory_bytes: 1 << 28, pids: 100 },
            patch_mode: PatchMode::Vulnbox,
            code: None,
            data: None,
            fixed: Vec::new(),
        };
        let now = Utc::now();
        assert_eq!(source.logs(&red, &web, now - chrono::Duration::hours(1), now, 10).await, Ok(LogWindow::default()));
    }
}
