//! The scenario every submission test and the test server use: five teams covering every
//! role, a NOP team, and a team on the loopback network so address mode can be tested locally.
// Shared by tests, the example server and the benchmark; each uses a part.
#![allow(dead_code)]

use gongfang_core::scenario::{Identify, Role, Scenario};
use gongfang_core::{FlagCodec, FlagInfo, ServiceId, StoreIdx, TeamId, Tick};
use gongfang_test_support::scenario::{ScenarioBuilder, service, team};

pub const SECRET: &[u8] = b"submission test secret, for tests only";
pub const PREFIX: &str = "GONGFANG";
pub const LIFETIME: u32 = 5;

/// Alpha plays both roles from 127.0.0.0/8; bravo defends; charlie attacks; nop is the NOP team.
pub const ALPHA: TeamId = TeamId(1);
pub const BRAVO: TeamId = TeamId(2);
pub const CHARLIE: TeamId = TeamId(3);
pub const NOP: TeamId = TeamId(4);
pub const DELTA: TeamId = TeamId(5);

pub fn scenario(identify: Identify, lifetime: u32, max_connections: u32, rate_limit: Option<u32>) -> Scenario {
    ScenarioBuilder::new("subtest")
        .flag_lifetime(lifetime)
        .flag_prefix(PREFIX)
        .secret(std::str::from_utf8(SECRET).expect("the secret is text"))
        .submission(identify, rate_limit, max_connections)
        .team(team(1, "alpha").network("127.0.0.0/8"))
        .team(team(2, "bravo").role(Role::Defender))
        .team(team(3, "charlie").role(Role::Attacker))
        .team(team(4, "nop").role(Role::Defender).nop())
        .team(team(5, "delta"))
        .service(service("notes").flag_stores(2))
        .service(service("vault").flag_stores(2))
        .build()
}

pub fn codec() -> FlagCodec {
    FlagCodec::for_drill(PREFIX, SECRET, "subtest", gongfang_core::DrillId::from_bytes([2; 16]))
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
