//! Scenarios built in code: a test names the teams and services it needs and gets the same
//! scenario file an organiser would write (for commands that read one), or that file parsed
//! and validated by the real parser (for libraries that take a [`Scenario`]).
//!
//! ```ignore
//! let scenario = ScenarioBuilder::new("engine-test")
//!     .team(team(1, "alpha"))
//!     .team(team(2, "red").role(Role::Attacker))
//!     .service(service("notes").flag_stores(2))
//!     .build();
//! ```

use std::fmt::Write as _;
use std::path::Path;

use gongfang_core::scenario::{self, AssumeEverythingExists, Identify, Role, Scenario};

/// A drill scenario under construction. Unset keys keep the parser's defaults, except those
/// the builder sets for tests (a one-hour drill of 60-second ticks, 10-second checker timeouts,
/// a flag lifetime of 5 and an inline secret made from the slug, which makes it a demo drill:
/// `demo = true`, as a scenario keeping its secret inline must say).
#[derive(Debug, Clone)]
pub struct ScenarioBuilder {
    drill: Vec<(&'static str, String)>,
    submission: Vec<(&'static str, String)>,
    reports: Vec<(&'static str, String)>,
    vpn: Vec<(&'static str, String)>,
    patches: Vec<(&'static str, String)>,
    teams: Vec<TeamSpec>,
    services: Vec<ServiceSpec>,
}

impl ScenarioBuilder {
    /// A drill called `slug`, without teams or services yet.
    pub fn new(slug: &str) -> ScenarioBuilder {
        let drill = vec![
            ("slug", quoted(slug)),
            ("name", quoted(&format!("Test drill {slug}"))),
            ("duration", quoted("1h")),
            ("tick", quoted("60s")),
            ("checker_timeout", quoted("10s")),
            ("flag_lifetime", "5".to_owned()),
            ("secret", quoted(&format!("{slug}-test-secret-0123456789"))),
            ("demo", "true".to_owned()),
        ];
        ScenarioBuilder {
            drill,
            submission: Vec::new(),
            reports: Vec::new(),
            vpn: Vec::new(),
            patches: Vec::new(),
            teams: Vec::new(),
            services: Vec::new(),
        }
    }

    /// The drill's display names in English and Traditional Chinese.
    pub fn name(self, en: &str, zh: &str) -> ScenarioBuilder {
        self.drill_key("name", quoted(en)).drill_key("name_zh", quoted(zh))
    }

    /// How long the drill runs, e.g. `"10m"`.
    pub fn duration(self, duration: &str) -> ScenarioBuilder {
        self.drill_key("duration", quoted(duration))
    }

    /// The length of a tick, e.g. `"60s"`.
    pub fn tick(self, tick: &str) -> ScenarioBuilder {
        self.drill_key("tick", quoted(tick))
    }

    /// The longest one checker action may take.
    pub fn checker_timeout(self, timeout: &str) -> ScenarioBuilder {
        self.drill_key("checker_timeout", quoted(timeout))
    }

    /// When tick 0 starts, as RFC 3339 (e.g. `"2026-12-05T10:00:00Z"`).
    pub fn start(self, at: &str) -> ScenarioBuilder {
        self.drill_key("start", quoted(at))
    }

    /// Ticks a flag stays valid.
    pub fn flag_lifetime(self, ticks: u32) -> ScenarioBuilder {
        self.drill_key("flag_lifetime", ticks.to_string())
    }

    /// What flags start with.
    pub fn flag_prefix(self, prefix: &str) -> ScenarioBuilder {
        self.drill_key("flag_prefix", quoted(prefix))
    }

    /// The flag secret, inline (at least 16 characters; the drill stays a demo).
    pub fn secret(self, secret: &str) -> ScenarioBuilder {
        self.drill_key("secret", quoted(secret))
    }

    /// How the TCP submission server knows a team, the most flags per second a team may submit
    /// over HTTP, and the most connections per team.
    pub fn submission(mut self, identify: Identify, rate_limit: Option<u32>, max_connections: u32) -> ScenarioBuilder {
        let identify = match identify {
            Identify::Address => "address",
            Identify::Token => "token",
        };
        self.submission = vec![("identify", quoted(identify)), ("max_connections", max_connections.to_string())];
        self.submission.extend(rate_limit.map(|r| ("rate_limit", r.to_string())));
        self
    }

    /// A `[reports]` table of `key = value` lines, values written as TOML (`"red-blue"`, `2.5`).
    pub fn reports(mut self, keys: &[(&'static str, &str)]) -> ScenarioBuilder {
        self.reports = keys.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        self
    }

    /// A `[patches]` table of `key = value` lines, values written as TOML (`"20s"`, `10`).
    pub fn patches(mut self, keys: &[(&'static str, &str)]) -> ScenarioBuilder {
        self.patches = keys.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        self
    }

    /// A `[vpn]` table: where teams reach the gateway (`host:port`), the tunnel range and how
    /// many configs each team gets; the other keys keep their defaults.
    pub fn vpn(mut self, listen: &str, range: &str, peers_per_team: u32) -> ScenarioBuilder {
        self.vpn =
            vec![("listen", quoted(listen)), ("range", quoted(range)), ("peers_per_team", peers_per_team.to_string())];
        self
    }

    pub fn team(mut self, team: TeamSpec) -> ScenarioBuilder {
        self.teams.push(team);
        self
    }

    /// Adds services in order: the first is service 1.
    pub fn service(mut self, service: ServiceSpec) -> ScenarioBuilder {
        self.services.push(service);
        self
    }

    /// The scenario file.
    pub fn toml(&self) -> String {
        let mut out = String::new();
        table(&mut out, "[drill]", &self.drill);
        if !self.submission.is_empty() {
            table(&mut out, "[submission]", &self.submission);
        }
        if !self.reports.is_empty() {
            table(&mut out, "[reports]", &self.reports);
        }
        if !self.vpn.is_empty() {
            table(&mut out, "[vpn]", &self.vpn);
        }
        if !self.patches.is_empty() {
            table(&mut out, "[patches]", &self.patches);
        }
        for team in &self.teams {
            table(&mut out, "[[team]]", &team.0);
        }
        for service in &self.services {
            table(&mut out, "[[service]]", &service.0);
        }
        out
    }

    /// The scenario file parsed and validated as `gongfang validate` would, with every checker
    /// and build folder taken to exist. Panics with the parser's problems when it is invalid.
    pub fn build(&self) -> Scenario {
        scenario::parse(&self.toml(), Path::new("scenario.toml"), &AssumeEverythingExists)
            .unwrap_or_else(|problems| panic!("the test scenario is invalid:\n{problems}\n{}", self.toml()))
    }

    fn drill_key(mut self, key: &'static str, value: String) -> ScenarioBuilder {
        set(&mut self.drill, key, value);
        self
    }
}

/// Team `id` called `slug`: plays both roles, is named after its slug, owns `10.60.ID.0/24`
/// (pick another network for ids above 255).
pub fn team(id: u16, slug: &str) -> TeamSpec {
    let keys = vec![
        ("id", id.to_string()),
        ("slug", quoted(slug)),
        ("name", quoted(&format!("Team {slug}"))),
        ("network", quoted(&format!("10.60.{id}.0/24"))),
    ];
    TeamSpec(keys)
}

/// A team of a [`ScenarioBuilder`].
#[derive(Debug, Clone)]
pub struct TeamSpec(Vec<(&'static str, String)>);

impl TeamSpec {
    pub fn role(self, role: Role) -> TeamSpec {
        let role = match role {
            Role::Attacker => "attacker",
            Role::Defender => "defender",
            Role::Both => "both",
        };
        self.key("role", quoted(role))
    }

    pub fn name(self, en: &str, zh: &str) -> TeamSpec {
        self.key("name", quoted(en)).key("name_zh", quoted(zh))
    }

    /// The team's network in CIDR form.
    pub fn network(self, cidr: &str) -> TeamSpec {
        self.key("network", quoted(cidr))
    }

    /// Makes this the NOP team.
    pub fn nop(self) -> TeamSpec {
        self.key("nop", "true".to_owned())
    }

    fn key(mut self, key: &'static str, value: String) -> TeamSpec {
        set(&mut self.0, key, value);
        self
    }
}

/// Service `slug`: image `SLUG:latest`, port 8080, checker `SLUG.wasm`, one flag store.
pub fn service(slug: &str) -> ServiceSpec {
    let keys = vec![
        ("slug", quoted(slug)),
        ("name", quoted(&format!("Service {slug}"))),
        ("image", quoted(&format!("{slug}:latest"))),
        ("ports", "[8080]".to_owned()),
        ("checker", quoted(&format!("{slug}.wasm"))),
    ];
    ServiceSpec(keys)
}

/// A service of a [`ScenarioBuilder`].
#[derive(Debug, Clone)]
pub struct ServiceSpec(Vec<(&'static str, String)>);

impl ServiceSpec {
    pub fn name(self, en: &str, zh: &str) -> ServiceSpec {
        self.key("name", quoted(en)).key("name_zh", quoted(zh))
    }

    /// Folders kept on volumes of each team's own: the code its defenders edit (vulnbox) and
    /// the data restarts keep.
    pub fn volumes(self, code: &str, data: &str) -> ServiceSpec {
        self.key("code", quoted(code)).key("data", quoted(data))
    }

    /// Takes submitted patches (`patch_mode = "submit"`): its data on a volume of each team's
    /// own, and files of its build folder no patch may change.
    pub fn submitted_patches(self, data: &str, fixed: &[&str]) -> ServiceSpec {
        let fixed: Vec<String> = fixed.iter().map(|f| quoted(f)).collect();
        self.key("patch_mode", quoted("submit"))
            .key("data", quoted(data))
            .key("fixed", format!("[{}]", fixed.join(", ")))
    }

    /// A local image to run.
    pub fn image(self, image: &str) -> ServiceSpec {
        self.key("image", quoted(image))
    }

    /// A folder with a `Dockerfile` to build the image from, instead of an image.
    pub fn build_from(mut self, folder: &Path) -> ServiceSpec {
        self.0.retain(|(k, _)| *k != "image");
        self.key("build", quoted(&folder.display().to_string()))
    }

    pub fn ports(self, ports: &[u16]) -> ServiceSpec {
        let list: Vec<String> = ports.iter().map(u16::to_string).collect();
        self.key("ports", format!("[{}]", list.join(", ")))
    }

    /// The checker component's path.
    pub fn checker(self, path: &str) -> ServiceSpec {
        self.key("checker", quoted(path))
    }

    pub fn flag_stores(self, stores: u8) -> ServiceSpec {
        self.key("flag_stores", stores.to_string())
    }

    /// CPU and memory limits per instance, e.g. `0.5` and `"256MiB"`.
    pub fn limits(self, cpus: f64, memory: &str) -> ServiceSpec {
        self.key("cpus", format!("{cpus:?}")).key("memory", quoted(memory))
    }

    fn key(mut self, key: &'static str, value: String) -> ServiceSpec {
        set(&mut self.0, key, value);
        self
    }
}

/// Sets `key` in `keys`, replacing an earlier value.
fn set(keys: &mut Vec<(&'static str, String)>, key: &'static str, value: String) {
    match keys.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => keys.push((key, value)),
    }
}

fn table(out: &mut String, header: &str, keys: &[(&'static str, String)]) {
    let _ = writeln!(out, "{header}");
    for (key, value) in keys {
        let _ = writeln!(out, "{key} = {value}");
    }
    out.push('\n');
}

/// `s` as a TOML basic string.
fn quoted(s: &str) -> String {
    format!("{s:?}")
}

#[cfg(test)]
mod tests {
    use gongfang_core::{ServiceId, TeamId};

    use super::*;

    #[test]
    fn what_is_built_is_what_the_parser_reads() {
        let scenario = ScenarioBuilder::new("builder")
            .name("Builder", "建構")
            .tick("30s")
            .flag_lifetime(3)
            .submission(Identify::Token, Some(10), 4)
            .team(team(1, "alpha"))
            .team(team(2, "red").role(Role::Attacker).name("Red", "紅隊"))
            .team(team(3, "nop").role(Role::Defender).network("10.99.0.0/24").nop())
            .service(service("notes").ports(&[80, 81]).flag_stores(2))
            .service(service("kv").build_from(Path::new("services/kv")).limits(0.5, "256MiB"))
            .build();
        assert_eq!(scenario.drill.name.zh, "建構");
        assert_eq!(scenario.drill.tick.as_secs(), 30);
        assert_eq!(scenario.drill.flag_lifetime, 3);
        assert_eq!(scenario.submission.max_connections, 4);
        assert_eq!(scenario.submission.rate_limit, Some(10));
        let ids: Vec<TeamId> = scenario.teams.iter().map(|t| t.id).collect();
        assert_eq!(ids, [TeamId(1), TeamId(2), TeamId(3)]);
        assert_eq!(scenario.teams[1].role, Role::Attacker);
        assert_eq!(scenario.teams[1].name.en, "Red");
        assert!(scenario.teams[2].nop);
        assert_eq!(scenario.services[0].ports, [80, 81]);
        assert_eq!(scenario.services[0].flag_stores, 2);
        assert_eq!(scenario.services[1].id, ServiceId(2));
        assert_eq!(scenario.services[1].limits.cpus, 0.5);
    }
}
