//! The scenario every submission test and the test server use: five teams covering every
//! role, a NOP team, and a team on the loopback network so address mode can be tested locally.
// Shared by tests, the example server and the benchmark; each uses a part.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use gongfang_core::scenario::{
    Drill, Identify, ImageSource, Ipv4Net, Limits, Names, PatchMode, Role, Scenario, ScoringFormula, SecretSource,
    Service, Submission, Team,
};
use gongfang_core::{FlagCodec, FlagInfo, ServiceId, StoreIdx, TeamId, Tick};

pub const SECRET: &[u8] = b"submission test secret, for tests only";
pub const PREFIX: &str = "GONGFANG";
pub const LIFETIME: u32 = 5;

/// Alpha plays both roles from 127.0.0.0/8; bravo defends; charlie attacks; nop is the NOP team.
pub const ALPHA: TeamId = TeamId(1);
pub const BRAVO: TeamId = TeamId(2);
pub const CHARLIE: TeamId = TeamId(3);
pub const NOP: TeamId = TeamId(4);
pub const DELTA: TeamId = TeamId(5);

fn names(en: &str) -> Names {
    Names { en: en.to_owned(), zh: en.to_owned() }
}

fn team(id: u16, slug: &str, role: Role, network: &str, nop: bool) -> Team {
    Team {
        id: TeamId(id),
        slug: slug.to_owned(),
        name: names(slug),
        role,
        network: Ipv4Net::parse(network).unwrap(),
        nop,
    }
}

fn service(id: u8, slug: &str) -> Service {
    Service {
        id: ServiceId(id),
        slug: slug.to_owned(),
        name: names(slug),
        source: ImageSource::Image(format!("{slug}:latest")),
        ports: vec![8080],
        checker: PathBuf::from(format!("{slug}.wasm")),
        flag_stores: 2,
        limits: Limits { cpus: 1.0, memory_bytes: 256 << 20, pids: 128 },
        patch_mode: PatchMode::Vulnbox,
    }
}

pub fn scenario(identify: Identify, lifetime: u32, max_connections: u32, rate_limit: Option<u32>) -> Scenario {
    Scenario {
        drill: Drill {
            slug: "subtest".to_owned(),
            name: names("Submission test"),
            start: None,
            duration: Duration::from_secs(3600),
            tick: Duration::from_secs(60),
            checker_timeout: Duration::from_secs(10),
            flag_lifetime: lifetime,
            flag_prefix: PREFIX.to_owned(),
            secret: SecretSource::Inline(String::from_utf8(SECRET.to_vec()).unwrap()),
            scoring: ScoringFormula::Faust,
        },
        submission: Submission { identify, rate_limit, max_connections },
        teams: vec![
            team(1, "alpha", Role::Both, "127.0.0.0/8", false),
            team(2, "bravo", Role::Defender, "10.60.2.0/24", false),
            team(3, "charlie", Role::Attacker, "10.60.3.0/24", false),
            team(4, "nop", Role::Defender, "10.60.4.0/24", true),
            team(5, "delta", Role::Both, "10.60.5.0/24", false),
        ],
        services: vec![service(1, "notes"), service(2, "vault")],
        reports: Default::default(),
    }
}

pub fn codec() -> FlagCodec {
    FlagCodec::new(PREFIX, SECRET)
}

pub fn flag(tick: u32, team: TeamId, service: u8, store: u8) -> String {
    codec().mint(FlagInfo { tick: Tick(tick), team, service: ServiceId(service), store: StoreIdx(store) })
}

/// The `n`-th of many distinct valid flags of defending teams (bravo and delta), planted in
/// ticks `first_tick`, `first_tick + 1`, ...: 1024 flags per tick.
pub fn nth_flag(codec: &FlagCodec, n: u64, first_tick: u32) -> String {
    const VICTIMS: [TeamId; 2] = [BRAVO, DELTA];
    let victim = VICTIMS[(n % 2) as usize];
    let rest = n / 2;
    let store = (rest % 256) as u8;
    let rest = rest / 256;
    let service = 1 + (rest % 2) as u8;
    let tick = first_tick + (rest / 2) as u32;
    codec.mint(FlagInfo { tick: Tick(tick), team: victim, service: ServiceId(service), store: StoreIdx(store) })
}
