//! What the store's tests share on top of the harness (`gongfang-test-support`): the drill they
//! sync, and teams to add to it.

#![allow(dead_code)]

use gongfang_core::TeamId;
use gongfang_core::scenario::{Role, Scenario, Team};
use gongfang_test_support::scenario::{ScenarioBuilder, service, team as spec};

pub use gongfang_test_support::TestDb;

/// A small red/blue drill: two attackers, two defenders, one both, two services.
fn drill() -> ScenarioBuilder {
    ScenarioBuilder::new("test-drill")
        .name("Test drill", "測試演練")
        .flag_prefix("GF")
        .team(spec(1, "red-one").role(Role::Attacker))
        .team(spec(2, "red-two").role(Role::Attacker))
        .team(spec(3, "blue-one").role(Role::Defender))
        .team(spec(4, "blue-two").role(Role::Defender))
        .team(spec(5, "purple").role(Role::Both))
        .service(service("notes").flag_stores(2))
        .service(service("bank").flag_stores(2))
}

pub fn scenario() -> Scenario {
    drill().build()
}

/// Team `id` as the scenario would have it, for adding it to a synced drill.
pub fn team(id: u16, slug: &str, role: Role) -> Team {
    // The parser wants an attacker and a defender besides it, on numbers and networks it does
    // not use.
    let scenario = ScenarioBuilder::new("one-team")
        .team(spec(id, slug).role(role))
        .team(spec(65534, "other-attacker").role(Role::Attacker).network("10.61.0.0/24"))
        .team(spec(65535, "other-defender").role(Role::Defender).network("10.62.0.0/24"))
        .service(service("notes"))
        .build();
    scenario.teams.into_iter().find(|t| t.id == TeamId(id)).expect("the team is in its scenario")
}
