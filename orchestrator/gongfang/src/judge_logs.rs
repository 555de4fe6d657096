//! The judges' view of a target's container logs: [`DockerLogs`] answers the reports crate's
//! [`LogSource`] from the drill's containers on the Docker engine.

use chrono::{DateTime, Utc};
use gongfang_core::scenario::{Service, Team};
use gongfang_docker::{Engine, ServiceLogs};
use gongfang_reports::{LogFuture, LogLine, LogSource};
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
                return Ok(Vec::new());
            }
            match self.logs.window(&team.slug, &service.slug, from, to, limit).await {
                Ok(lines) => Ok(lines.into_iter().map(report_line).collect()),
                Err(e) => {
                    warn!(drill = self.logs.drill(), team = team.slug, service = service.slug, error = %e, "container logs for a judge");
                    Err(e.to_string())
                }
            }
        })
    }
}

/// The judges see which container wrote the line (`main` or the sidecar's name).
fn report_line(l: gongfang_docker::LogLine) -> LogLine {
    LogLine { at: l.at, container: l.component, line: l.text }
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
        };
        assert_eq!(
            report_line(line),
            LogLine { at, container: "db".into(), line: "FATAL: password authentication failed".into() }
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
        };
        let now = Utc::now();
        assert_eq!(source.logs(&red, &web, now - chrono::Duration::hours(1), now, 10).await, Ok(Vec::new()));
    }
}
