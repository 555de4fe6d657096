//! The network plan: a pure function from a scenario to the networks, addresses and container
//! specs of a drill. Nothing here talks to an engine, so the layout is testable and stable.
//!
//! Layout (also in `docs/orchestrator.md`):
//! - team T's game network is the scenario's `team.network`; its first address (`.1`) is the
//!   host's side of the bridge, the service with id S (1-based, scenario order) is at host
//!   S+1: the first service at `.2`, the second at `.3`, ...;
//! - a service with sidecars (app + database) also gets a private, internal network: the
//!   `/28` with index `team.id * 16 + service.id` in `Settings::private_pool`; the app is at
//!   its `.2`, sidecars follow in order. Sidecars are on no other network;
//! - where a service takes submitted patches, each defending team also has a staging network:
//!   the `/28` with index `team.id` in `Settings::staging_pool`, made when a patch of the team
//!   is first tried; the staged instance is at its `.2`.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;

use gongfang_core::scenario::{ImageSource, Ipv4Net, PatchMode, Scenario};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::hardening::{Hardening, HardeningOverrides};
use crate::labels;
use crate::runtime::Backend;
use crate::{Error, Result};

/// Prefix length of one private service network.
pub const PRIVATE_PREFIX: u8 = 28;
/// How many private networks one team may have (service ids 1..16 with sidecars).
pub const PRIVATE_PER_TEAM: u32 = 16;

/// How the orchestrator runs a drill, beyond what the scenario says.
#[derive(Debug, Clone)]
pub struct Settings {
    pub backend: Backend,
    /// Install host firewall rules (Docker backend only).
    pub firewall: bool,
    /// Where private service networks are carved from.
    pub private_pool: Ipv4Net,
    /// Where teams' staging networks (submitted patches) are carved from.
    pub staging_pool: Ipv4Net,
    /// How many engine operations run at once.
    pub concurrency: usize,
    /// Per service slug: hardening overrides, sidecars, environment.
    pub services: BTreeMap<String, ServiceExtras>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            backend: Backend::Docker,
            firewall: true,
            private_pool: Ipv4Net { addr: Ipv4Addr::new(10, 250, 0, 0), prefix: 16 },
            staging_pool: Ipv4Net { addr: Ipv4Addr::new(10, 251, 0, 0), prefix: 16 },
            concurrency: 8,
            services: BTreeMap::new(),
        }
    }
}

/// What a scenario says about one service beyond its image and limits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ServiceExtras {
    pub hardening: HardeningOverrides,
    /// `KEY=value` pairs for the service's own container.
    pub env: Vec<String>,
    /// Containers that only the service's app reaches, over its private network.
    pub sidecars: Vec<Sidecar>,
}

/// A helper container of a service (its database, cache, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sidecar {
    /// Also its DNS name on the private network, e.g. `db`.
    pub name: String,
    pub source: ImageSource,
    pub env: Vec<String>,
    pub hardening: HardeningOverrides,
}

/// Which role a network plays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum NetworkKind {
    /// The team's network, reachable from the host.
    Game,
    /// One service's app-to-sidecar network; internal, reachable from nothing else.
    Private { service: String },
    /// The team's staging network, where a submitted patch runs while the checker tries it;
    /// reachable from the host only, like the game network, and from no team.
    Staging,
}

/// One network to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkSpec {
    pub name: String,
    pub team: String,
    pub kind: NetworkKind,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    /// The host-side bridge interface (at most 15 bytes), which firewall rules name.
    pub bridge: String,
}

impl NetworkSpec {
    pub fn internal(&self) -> bool {
        matches!(self.kind, NetworkKind::Private { .. })
    }

    pub fn config_hash(&self) -> String {
        digest(&serde_json::to_vec(self).expect("plain data serialises"))
    }

    pub fn labels(&self, drill: &str) -> HashMap<String, String> {
        let mut l = HashMap::from([
            (labels::DRILL.to_owned(), drill.to_owned()),
            (labels::TEAM.to_owned(), self.team.clone()),
            (labels::CONFIG_HASH.to_owned(), self.config_hash()),
        ]);
        if let NetworkKind::Private { service } = &self.kind {
            l.insert(labels::SERVICE.to_owned(), service.clone());
        }
        l
    }
}

/// A container's place on one network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attachment {
    pub network: String,
    pub address: Ipv4Addr,
    pub aliases: Vec<String>,
}

/// One container (or Swarm service) to run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceSpec {
    pub name: String,
    pub team: String,
    pub service: String,
    /// `main`, or the sidecar's name.
    pub component: String,
    pub source: ImageSource,
    /// The image to run: the scenario's name, or the tag a build folder is built to.
    pub image: String,
    pub game: Option<Attachment>,
    pub private: Option<Attachment>,
    pub ports: Vec<u16>,
    pub env: Vec<String>,
    pub hardening: Hardening,
    /// Folders kept on volumes of this team's own: the service's code (vulnbox) and data.
    pub volumes: Vec<VolumeSpec>,
}

/// A named volume mounted into an instance: made from the image's copy of `path` the first
/// time, kept across restarts and new containers, removed by `gongfang down --volumes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeSpec {
    pub name: String,
    pub path: String,
}

impl InstanceSpec {
    /// The digest that marks a container stale when anything it was made from changes,
    /// including the image's content (`image_id`).
    pub fn config_hash(&self, image_id: &str) -> String {
        let mut bytes = serde_json::to_vec(self).expect("plain data serialises");
        bytes.extend_from_slice(image_id.as_bytes());
        digest(&bytes)
    }

    pub fn labels(&self, drill: &str, image_id: &str) -> HashMap<String, String> {
        HashMap::from([
            (labels::DRILL.to_owned(), drill.to_owned()),
            (labels::TEAM.to_owned(), self.team.clone()),
            (labels::SERVICE.to_owned(), self.service.clone()),
            (labels::COMPONENT.to_owned(), self.component.clone()),
            (labels::CONFIG_HASH.to_owned(), self.config_hash(image_id)),
        ])
    }

    /// The engine's mounts for [`InstanceSpec::volumes`], labelled like the instance so
    /// `down` finds them.
    pub fn volume_mounts(&self, drill: &str) -> Vec<bollard::models::Mount> {
        use bollard::models::{Mount, MountType, MountVolumeOptions};
        let labels = HashMap::from([
            (labels::DRILL.to_owned(), drill.to_owned()),
            (labels::TEAM.to_owned(), self.team.clone()),
            (labels::SERVICE.to_owned(), self.service.clone()),
        ]);
        self.volumes
            .iter()
            .map(|v| Mount {
                target: Some(v.path.clone()),
                source: Some(v.name.clone()),
                typ: Some(MountType::VOLUME),
                read_only: Some(false),
                volume_options: Some(MountVolumeOptions {
                    no_copy: Some(false),
                    labels: Some(labels.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect()
    }

    /// The networks this instance joins, first the one it is created on.
    pub fn attachments(&self) -> impl Iterator<Item = &Attachment> {
        self.game.iter().chain(self.private.iter())
    }
}

/// Everything a drill runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub drill: String,
    pub networks: Vec<NetworkSpec>,
    pub instances: Vec<InstanceSpec>,
    /// Teams' staging networks, made when first needed (not by `up`), kept by it, and
    /// covered by the firewall from the start.
    pub staging: Vec<NetworkSpec>,
}

/// The component name of a staged instance.
pub const STAGING: &str = "staging";

impl Plan {
    pub fn instance(&self, team: &str, service: &str) -> Option<&InstanceSpec> {
        self.instances.iter().find(|i| i.team == team && i.service == service && i.component == "main")
    }

    /// Every bridge interface of the drill, staging networks included, for the firewall.
    pub fn bridges(&self) -> impl Iterator<Item = &str> {
        self.networks.iter().chain(&self.staging).map(|n| n.bridge.as_str())
    }

    /// Runs `image` (a tag on the engine) as the team's service instead of the scenario's: a
    /// deployed patch.
    pub fn use_image(&mut self, team: &str, service: &str, image: &str) -> Result<()> {
        let spec = self
            .instances
            .iter_mut()
            .find(|i| i.team == team && i.service == service && i.component == "main")
            .ok_or_else(|| Error::NotFound(format!("{team}/{service}")))?;
        spec.image = image.to_owned();
        spec.source = ImageSource::Image(image.to_owned());
        Ok(())
    }

    /// The staging network of a team and the instance that runs `image` on it in place of the
    /// team's service: the service's hardening and limits, no volume of the team's (its data
    /// folders are empty tmpfs), no sidecars.
    pub fn staging(&self, team: &str, service: &str, image: &str) -> Result<(NetworkSpec, InstanceSpec)> {
        let missing = || {
            Error::Plan(format!(
                "team `{team}` has no staging network: no service of the scenario takes submitted patches"
            ))
        };
        let network = self.staging.iter().find(|n| n.team == team).cloned().ok_or_else(missing)?;
        let main = self.instance(team, service).ok_or_else(|| Error::NotFound(format!("{team}/{service}")))?;
        let mut hardening = main.hardening.clone();
        for volume in &main.volumes {
            hardening.tmpfs.insert(volume.path.clone(), "rw,nosuid,nodev,size=64m".to_owned());
        }
        let spec = InstanceSpec {
            name: format!("{}-{STAGING}", main.name),
            component: STAGING.to_owned(),
            source: ImageSource::Image(image.to_owned()),
            image: image.to_owned(),
            game: Some(Attachment {
                network: network.name.clone(),
                address: network.subnet.host(2).expect("a /28"),
                aliases: vec![service.to_owned()],
            }),
            private: None,
            volumes: Vec::new(),
            hardening,
            ..main.clone()
        };
        Ok((network, spec))
    }
}

fn digest(bytes: &[u8]) -> String {
    hex::encode(&Sha256::digest(bytes)[..8])
}

/// A short, stable tag of the drill for names with tight length limits (interfaces, chains).
pub fn drill_tag(drill: &str) -> String {
    hex::encode(&Sha256::digest(drill.as_bytes())[..3])
}

fn build_tag(drill: &str, service: &str, component: &str) -> String {
    if component == "main" {
        format!("gongfang/{drill}-{service}:latest")
    } else {
        format!("gongfang/{drill}-{service}-{component}:latest")
    }
}

fn image_of(source: &ImageSource, drill: &str, service: &str, component: &str) -> String {
    match source {
        ImageSource::Image(name) => name.clone(),
        ImageSource::Build(_) => build_tag(drill, service, component),
    }
}

/// The plan for `scenario`: one game network per defending team, one private network per
/// team and service with sidecars, and every container with its address and hardening.
pub fn plan(scenario: &Scenario, settings: &Settings) -> Result<Plan> {
    let drill = scenario.drill.slug.clone();
    let tag = drill_tag(&drill);
    let mut networks = Vec::new();
    let mut instances = Vec::new();
    let mut staging = Vec::new();
    for team in scenario.defenders() {
        if let Some(other) = scenario.teams.iter().find(|t| t.id != team.id && t.network.overlaps(team.network)) {
            return Err(Error::Plan(format!("networks of teams `{}` and `{}` overlap", team.slug, other.slug)));
        }
        if settings.private_pool.overlaps(team.network) {
            return Err(Error::Plan(format!(
                "team `{}`'s network {} overlaps the private pool {}",
                team.slug, team.network, settings.private_pool
            )));
        }
        if settings.staging_pool.overlaps(team.network) {
            return Err(Error::Plan(format!(
                "team `{}`'s network {} overlaps the staging pool {}",
                team.slug, team.network, settings.staging_pool
            )));
        }
        let game_name = format!("gf-{drill}-{}", team.slug);
        let gateway = team.network.host(1).filter(|_| team.network.prefix <= 30).ok_or_else(|| {
            Error::Plan(format!(
                "team `{}`'s network {} is too small for a gateway and a service",
                team.slug, team.network
            ))
        })?;
        networks.push(NetworkSpec {
            name: game_name.clone(),
            team: team.slug.clone(),
            kind: NetworkKind::Game,
            subnet: team.network,
            gateway,
            bridge: format!("gf{tag}t{}", team.id.0),
        });
        for service in &scenario.services {
            let sid = u32::from(service.id.0);
            let address = team
                .network
                .host(sid + 1)
                .filter(|a| Some(*a) != team.network.host((1u32 << (32 - team.network.prefix)) - 1))
                .ok_or_else(|| {
                    Error::Plan(format!(
                        "team `{}`'s network {} has no address for service `{}` (id {sid})",
                        team.slug, team.network, service.slug
                    ))
                })?;
            let extras = settings.services.get(&service.slug).cloned().unwrap_or_default();
            let main_name = format!("gf-{drill}-{}-{}", team.slug, service.slug);
            let mut private = None;
            if !extras.sidecars.is_empty() {
                if !(1..PRIVATE_PER_TEAM).contains(&sid) {
                    return Err(Error::Plan(format!(
                        "service `{}` has sidecars but id {sid}; only services 1..{} may",
                        service.slug,
                        PRIVATE_PER_TEAM - 1
                    )));
                }
                let index = u32::from(team.id.0) * PRIVATE_PER_TEAM + sid;
                let subnet = private_subnet(settings.private_pool, index).ok_or_else(|| {
                    Error::Plan(format!(
                        "the private pool {} has no network #{index} for team `{}` (id {}); use a larger pool",
                        settings.private_pool, team.slug, team.id.0
                    ))
                })?;
                let net_name = format!("{main_name}-private");
                networks.push(NetworkSpec {
                    name: net_name.clone(),
                    team: team.slug.clone(),
                    kind: NetworkKind::Private { service: service.slug.clone() },
                    subnet,
                    gateway: subnet.host(1).expect("a /28 has 16 addresses"),
                    bridge: format!("gf{tag}p{index}"),
                });
                if extras.sidecars.len() > 12 {
                    return Err(Error::Plan(format!(
                        "service `{}` has {} sidecars; at most 12 fit its private network",
                        service.slug,
                        extras.sidecars.len()
                    )));
                }
                for (k, sidecar) in extras.sidecars.iter().enumerate() {
                    instances.push(InstanceSpec {
                        name: format!("{main_name}-{}", sidecar.name),
                        team: team.slug.clone(),
                        service: service.slug.clone(),
                        component: sidecar.name.clone(),
                        source: sidecar.source.clone(),
                        image: image_of(&sidecar.source, &drill, &service.slug, &sidecar.name),
                        game: None,
                        private: Some(Attachment {
                            network: net_name.clone(),
                            address: subnet.host(3 + k as u32).expect("checked: at most 12 sidecars"),
                            aliases: vec![sidecar.name.clone()],
                        }),
                        ports: Vec::new(),
                        env: sidecar.env.clone(),
                        hardening: Hardening::resolve(&service.limits, &scenario.logs, &sidecar.hardening),
                        volumes: Vec::new(),
                    });
                }
                private = Some(Attachment {
                    network: net_name,
                    address: subnet.host(2).expect("a /28"),
                    aliases: vec![service.slug.clone()],
                });
            }
            instances.push(InstanceSpec {
                team: team.slug.clone(),
                service: service.slug.clone(),
                component: "main".to_owned(),
                source: service.source.clone(),
                image: image_of(&service.source, &drill, &service.slug, "main"),
                game: Some(Attachment { network: game_name.clone(), address, aliases: vec![service.slug.clone()] }),
                private,
                ports: service.ports.clone(),
                env: extras.env.clone(),
                hardening: Hardening::resolve(&service.limits, &scenario.logs, &extras.hardening),
                volumes: service
                    .volumes()
                    .map(|(kind, path)| VolumeSpec { name: format!("{main_name}-{kind}"), path: path.to_owned() })
                    .collect(),
                name: main_name,
            });
        }
        if scenario.services.iter().any(|s| s.patch_mode == PatchMode::Submit) {
            let index = u32::from(team.id.0);
            let subnet = private_subnet(settings.staging_pool, index).ok_or_else(|| {
                Error::Plan(format!(
                    "the staging pool {} has no network #{index} for team `{}`; use a larger pool",
                    settings.staging_pool, team.slug
                ))
            })?;
            staging.push(NetworkSpec {
                name: format!("gf-{drill}-{}-{STAGING}", team.slug),
                team: team.slug.clone(),
                kind: NetworkKind::Staging,
                subnet,
                gateway: subnet.host(1).expect("a /28"),
                bridge: format!("gf{tag}s{index}"),
            });
        }
    }
    Ok(Plan { drill, networks, instances, staging })
}

fn private_subnet(pool: Ipv4Net, index: u32) -> Option<Ipv4Net> {
    if pool.prefix > PRIVATE_PREFIX {
        return None;
    }
    let count = 1u64 << (PRIVATE_PREFIX - pool.prefix);
    if u64::from(index) >= count {
        return None;
    }
    let addr = pool.host(index << (32 - PRIVATE_PREFIX))?;
    Some(Ipv4Net { addr, prefix: PRIVATE_PREFIX })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use gongfang_core::ids::{ServiceId, TeamId};
    use gongfang_core::scenario::{
        Drill, Identify, Limits, Names, PatchMode, Role, ScoringFormula, SecretSource, Service, Submission, Team,
    };

    use super::*;

    fn names() -> Names {
        Names { en: "x".into(), zh: "x".into() }
    }

    fn team(id: u16, slug: &str, role: Role, net: &str) -> Team {
        Team {
            id: TeamId(id),
            slug: slug.into(),
            name: names(),
            role,
            network: Ipv4Net::parse(net).unwrap(),
            nop: false,
        }
    }

    fn service(id: u8, slug: &str) -> Service {
        Service {
            id: ServiceId(id),
            slug: slug.into(),
            name: names(),
            source: ImageSource::Image("img".into()),
            ports: vec![8080],
            checker: PathBuf::from("c.wasm"),
            flag_stores: 1,
            limits: Limits { cpus: 1.0, memory_bytes: 1 << 28, pids: 100 },
            patch_mode: PatchMode::Vulnbox,
            code: None,
            data: None,
            fixed: Vec::new(),
        }
    }

    fn scenario(teams: Vec<Team>, services: Vec<Service>) -> Scenario {
        Scenario {
            drill: Drill {
                slug: "d".into(),
                name: names(),
                start: None,
                duration: Duration::from_secs(60),
                tick: Duration::from_secs(60),
                checker_timeout: Duration::from_secs(10),
                flag_lifetime: 5,
                flag_prefix: "F".into(),
                secret: SecretSource::Env("X".into()),
                scoring: ScoringFormula::Faust,
                demo: false,
                debrief_names: false,
            },
            submission: Submission { identify: Identify::Address, rate_limit: None, max_connections: 1 },
            teams,
            services,
            reports: Default::default(),
            logs: Default::default(),
            vpn: None,
            patches: Default::default(),
        }
    }

    fn with_db() -> Settings {
        let db = Sidecar {
            name: "db".into(),
            source: ImageSource::Image("pg".into()),
            env: vec![],
            hardening: Default::default(),
        };
        Settings {
            services: BTreeMap::from([("web".into(), ServiceExtras { sidecars: vec![db], ..Default::default() })]),
            ..Settings::default()
        }
    }

    #[test]
    fn addresses_follow_the_documented_layout() {
        let s = scenario(
            vec![
                team(1, "a", Role::Both, "10.60.1.0/24"),
                team(7, "b", Role::Defender, "10.60.7.0/24"),
                team(9, "red", Role::Attacker, "10.60.9.0/24"),
            ],
            vec![service(1, "web"), service(2, "api")],
        );
        let p = plan(&s, &with_db()).unwrap();
        assert_eq!(p.instance("a", "web").unwrap().game.as_ref().unwrap().address, Ipv4Addr::new(10, 60, 1, 2));
        assert_eq!(p.instance("a", "api").unwrap().game.as_ref().unwrap().address, Ipv4Addr::new(10, 60, 1, 3));
        assert_eq!(p.instance("b", "api").unwrap().game.as_ref().unwrap().address, Ipv4Addr::new(10, 60, 7, 3));
        assert!(p.instances.iter().all(|i| i.team != "red"), "attackers get no instances");
        // Team 7, service 1: private /28 number 7*16+1 = 113 of 10.250.0.0/16.
        let private = p.networks.iter().find(|n| n.team == "b" && n.internal()).unwrap();
        assert_eq!(private.subnet, Ipv4Net::parse("10.250.7.16/28").unwrap());
        let db = p.instances.iter().find(|i| i.team == "b" && i.component == "db").unwrap();
        assert!(db.game.is_none());
        assert_eq!(db.private.as_ref().unwrap().address, Ipv4Addr::new(10, 250, 7, 19));
        assert_eq!(p.instance("b", "web").unwrap().private.as_ref().unwrap().address, Ipv4Addr::new(10, 250, 7, 18));
        assert_eq!(p.networks.len(), 4, "2 game + 2 private");
        assert!(p.bridges().all(|b| b.len() <= 15));
    }

    #[test]
    fn the_plan_is_stable_and_hashes_follow_changes() {
        let s = scenario(vec![team(1, "a", Role::Both, "10.60.1.0/24")], vec![service(1, "web")]);
        let p1 = plan(&s, &Settings::default()).unwrap();
        let p2 = plan(&s, &Settings::default()).unwrap();
        assert_eq!(p1, p2);
        let i = &p1.instances[0];
        assert_eq!(i.config_hash("sha256:1"), p2.instances[0].config_hash("sha256:1"));
        assert_ne!(i.config_hash("sha256:1"), i.config_hash("sha256:2"), "a rebuilt image makes it stale");
        let mut s2 = s.clone();
        s2.services[0].limits.pids = 50;
        assert_ne!(
            plan(&s2, &Settings::default()).unwrap().instances[0].config_hash("sha256:1"),
            i.config_hash("sha256:1")
        );
    }

    #[test]
    fn impossible_layouts_are_refused() {
        let tiny = scenario(vec![team(1, "a", Role::Both, "10.60.1.0/30")], vec![service(1, "web"), service(2, "api")]);
        assert!(
            matches!(plan(&tiny, &Settings::default()), Err(Error::Plan(m)) if m.contains("no address for service `api`"))
        );
        let overlap = scenario(vec![team(1, "a", Role::Both, "10.250.1.0/24")], vec![service(1, "web")]);
        assert!(matches!(plan(&overlap, &Settings::default()), Err(Error::Plan(m)) if m.contains("private pool")));
        let many = scenario(vec![team(300, "a", Role::Both, "10.60.1.0/24")], vec![service(1, "web")]);
        assert!(matches!(plan(&many, &with_db()), Err(Error::Plan(m)) if m.contains("larger pool")));
    }
}
