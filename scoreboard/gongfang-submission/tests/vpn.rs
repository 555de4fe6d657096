//! Address mode over WireGuard: a connection from a team's tunnel block counts for that team,
//! after the game networks, and an address in no block is still refused. Real TCP from chosen
//! loopback sources, real SQLite store.

mod common;

use std::net::Ipv4Addr;

use common::fixture::{self, ALPHA, BRAVO, CHARLIE, LIFETIME};
use common::{Client, NOW, spawn, stored};
use gongfang_core::scenario::{Identify, Ipv4Net};
use gongfang_submission::Settings;
use gongfang_test_support::TestDb;

fn net(s: &str) -> Ipv4Net {
    Ipv4Net::parse(s).unwrap()
}

#[tokio::test]
async fn a_connection_from_a_teams_vpn_block_is_that_team() {
    let db = TestDb::sqlite().await;
    let mut scenario = fixture::scenario(Identify::Address, LIFETIME, 10, None);
    // No game network on loopback: only the tunnel blocks can name a team.
    scenario.teams[0].network = net("10.60.1.0/24");
    let app = spawn(&db, scenario, Settings::default()).await;
    let _ = app.state.clone().with_vpn_addresses(vec![(net("127.0.0.8/29"), CHARLIE), (net("127.0.0.16/29"), ALPHA)]);

    let mut c = Client::connect_from(app.tcp, Ipv4Addr::new(127, 0, 0, 9)).await;
    assert_eq!(c.banner().await.last().map(String::as_str), Some(""));
    let flag = fixture::flag(NOW.0, BRAVO, 1, 0);
    c.send(format!("{flag}\n").as_bytes()).await;
    assert_eq!(c.line().await.unwrap(), format!("{flag} OK Accepted"));
    // The last address of the block is in it too.
    let mut last = Client::connect_from(app.tcp, Ipv4Addr::new(127, 0, 0, 15)).await;
    last.banner().await;
    let own = fixture::flag(NOW.0, ALPHA, 1, 0);
    last.send(format!("{own}\n").as_bytes()).await;
    assert_eq!(last.line().await.unwrap(), format!("{own} OK Accepted"), "alpha's flag is not charlie's own");
    // The next block is alpha's: the same flag is its own.
    let mut alpha = Client::connect_from(app.tcp, Ipv4Addr::new(127, 0, 0, 16)).await;
    alpha.banner().await;
    alpha.send(format!("{own}\n").as_bytes()).await;
    assert_eq!(alpha.line().await.unwrap(), format!("{own} OWN This is your own flag"));
    drop((c, last, alpha));
    let store = app.store.clone();
    app.shutdown().await;
    let mut rows = stored(&store, NOW).await;
    rows.sort();
    let mut expected = vec![(CHARLIE, flag), (CHARLIE, own)];
    expected.sort();
    assert_eq!(rows, expected);
}

#[tokio::test]
async fn an_address_in_no_block_is_refused() {
    let db = TestDb::sqlite().await;
    let mut scenario = fixture::scenario(Identify::Address, LIFETIME, 10, None);
    scenario.teams[0].network = net("10.60.1.0/24");
    let app = spawn(&db, scenario, Settings::default()).await;
    let _ = app.state.clone().with_vpn_addresses(vec![(net("127.0.0.8/29"), CHARLIE)]);
    for source in [Ipv4Addr::new(127, 0, 0, 7), Ipv4Addr::new(127, 0, 0, 16)] {
        let mut c = Client::connect_from(app.tcp, source).await;
        assert_eq!(c.rest().await, format!("Your address {source} is in no team's network, goodbye\n"));
    }
    app.shutdown().await;
}

#[tokio::test]
async fn a_game_network_wins_over_a_vpn_block() {
    let db = TestDb::sqlite().await;
    // Alpha's game network is all of loopback; a block inside it names charlie.
    let app = spawn(&db, fixture::scenario(Identify::Address, LIFETIME, 10, None), Settings::default()).await;
    let _ = app.state.clone().with_vpn_addresses(vec![(net("127.0.0.8/29"), CHARLIE)]);
    assert_eq!(app.state.team_by_address(Ipv4Addr::new(127, 0, 0, 9)), Some(ALPHA));
    assert_eq!(app.state.team_by_address(Ipv4Addr::new(10, 99, 0, 1)), None);
    let mut c = Client::connect_from(app.tcp, Ipv4Addr::new(127, 0, 0, 9)).await;
    c.banner().await;
    let own = fixture::flag(NOW.0, ALPHA, 2, 1);
    c.send(format!("{own}\n").as_bytes()).await;
    assert_eq!(c.line().await.unwrap(), format!("{own} OWN This is your own flag"));
    drop(c);
    app.shutdown().await;
}
