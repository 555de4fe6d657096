//! WireGuard peers on real databases (SQLite and PostgreSQL): issued once per team, refused a
//! second time unless rotated, rotation replacing the keys in place, and the gateway's own key
//! kept across restarts; the shell keys generated with peers or registered;
//! the translation log written in batches and read back filtered.

mod common;

use std::net::Ipv4Addr;

use anyhow::{Context, ensure};
use chrono::{DateTime, TimeZone, Utc};
use gongfang_core::TeamId;
use gongfang_store::{
    MAX_TRANSLATIONS, NewVpnPeer, NewVpnTranslation, ShellKeyAdded, Store, StoreError, TranslationFilter, VpnIssue,
};

use common::TestDb;

gongfang_test_support::backend_tests!(
    peers_are_issued_once_and_listed,
    rotation_replaces_keys_in_place,
    the_gateway_key_survives_a_new_store,
    an_unknown_team_or_a_reused_key_is_refused,
    translations_are_read_newest_first_and_filtered,
    a_translation_batch_is_all_or_nothing,
    shell_keys_follow_their_peers_and_belong_to_one_team,
);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0).unwrap()
}

fn peers(tag: &str, base: [u8; 4], count: u32) -> Vec<NewVpnPeer> {
    (1..=count)
        .map(|n| NewVpnPeer {
            peer: n,
            // Public keys are 44 characters of base64; the store keeps them as given.
            public_key: format!("{tag}{n:0>width$}=", width = 43 - tag.len()),
            address: Ipv4Addr::from(u32::from(Ipv4Addr::from(base)) + n - 1),
            shell_key: Some(format!("ssh-ed25519 {tag}-shell-{n}")),
        })
        .collect()
}

async fn synced(db: &TestDb) -> anyhow::Result<()> {
    db.store.sync_scenario(&common::scenario()).await?;
    Ok(())
}

async fn peers_are_issued_once_and_listed(db: TestDb) -> anyhow::Result<()> {
    synced(&db).await?;
    let issued = db.store.issue_vpn_peers("red-one", &peers("a", [10, 80, 0, 4], 3), false, t0()).await?;
    let VpnIssue::Issued(stored) = issued else { anyhow::bail!("first issue refused: {issued:?}") };
    ensure!(stored.len() == 3, "{stored:?}");
    ensure!(stored.iter().all(|p| p.team == TeamId(1) && p.issued_at == t0() && p.rotated_at.is_none()));
    ensure!(stored[2].address == Ipv4Addr::new(10, 80, 0, 6) && stored[2].peer == 3, "{stored:?}");

    // A second issue without rotation changes nothing and says what is there.
    let again = db.store.issue_vpn_peers("red-one", &peers("b", [10, 80, 0, 4], 3), false, t0()).await?;
    ensure!(again == VpnIssue::AlreadyIssued(stored.clone()), "{again:?}");

    db.store.issue_vpn_peers("blue-one", &peers("c", [10, 80, 0, 8], 2), false, t0()).await?;
    let all = db.store.vpn_peers().await?;
    let teams: Vec<(u16, u32)> = all.iter().map(|p| (p.team.0, p.peer)).collect();
    ensure!(teams == [(1, 1), (1, 2), (1, 3), (3, 1), (3, 2)], "{teams:?}");
    ensure!(db.store.vpn_peers_of(TeamId(3)).await?.len() == 2);
    ensure!(db.store.vpn_peers_of(TeamId(2)).await?.is_empty(), "a team never issued has no peers");
    Ok(())
}

async fn rotation_replaces_keys_in_place(db: TestDb) -> anyhow::Result<()> {
    synced(&db).await?;
    db.store.issue_vpn_peers("purple", &peers("old", [10, 80, 0, 4], 3), false, t0()).await?;
    let later = t0() + chrono::Duration::hours(2);
    let rotated = db.store.issue_vpn_peers("purple", &peers("new", [10, 80, 0, 4], 2), true, later).await?;
    let VpnIssue::Issued(now) = rotated else { anyhow::bail!("rotation refused: {rotated:?}") };
    ensure!(now.len() == 2, "peer 3, no longer asked for, is gone: {now:?}");
    ensure!(now.iter().all(|p| p.public_key.starts_with("new")), "old keys kept: {now:?}");
    ensure!(now.iter().all(|p| p.issued_at == t0() && p.rotated_at == Some(later)), "{now:?}");
    let stored = db.store.vpn_peers().await?;
    ensure!(!stored.iter().any(|p| p.public_key.starts_with("old")), "an old key is still stored: {stored:?}");
    Ok(())
}

async fn the_gateway_key_survives_a_new_store(db: TestDb) -> anyhow::Result<()> {
    let key = db.store.vpn_gateway_key().await?;
    ensure!(key.expose().iter().any(|b| *b != 0), "the gateway key is all zeros");
    ensure!(!format!("{key:?}").contains(&format!("{:?}", key.expose())), "Debug shows the gateway key");
    let restarted = Store::connect_and_migrate(&db.url).await?;
    let again = restarted.vpn_gateway_key().await?;
    ensure!(again.expose() == key.expose(), "the gateway key changed across a restart");
    restarted.close().await?;
    // Another drill's database has a key of its own.
    let other = TestDb::sqlite().await;
    ensure!(other.store.vpn_gateway_key().await?.expose() != key.expose(), "two databases share a gateway key");
    Ok(())
}

async fn an_unknown_team_or_a_reused_key_is_refused(db: TestDb) -> anyhow::Result<()> {
    synced(&db).await?;
    let error = db.store.issue_vpn_peers("nobody", &peers("a", [10, 80, 0, 4], 1), false, t0()).await.unwrap_err();
    ensure!(matches!(&error, StoreError::UnknownTeam(slug) if slug == "nobody"), "{error}");
    db.store.issue_vpn_peers("red-one", &peers("same", [10, 80, 0, 4], 1), false, t0()).await?;
    let reused = db.store.issue_vpn_peers("red-two", &peers("same", [10, 80, 0, 8], 1), false, t0()).await;
    ensure!(reused.is_err(), "one public key was stored for two peers");
    let red_two = db.store.vpn_peers_of(TeamId(2)).await.context("listing after a refused issue")?;
    ensure!(red_two.is_empty(), "a refused issue left rows behind: {red_two:?}");
    Ok(())
}

fn translation(minute: i64, team: u16, peer: [u8; 4], target: [u8; 4], port: u16) -> NewVpnTranslation {
    NewVpnTranslation {
        at: t0() + chrono::Duration::minutes(minute) + chrono::Duration::milliseconds(250),
        team: TeamId(team),
        peer: Ipv4Addr::from(peer),
        target: Ipv4Addr::from(target),
        port,
        seen_as: Ipv4Addr::new(10, 60, 2, 1),
    }
}

async fn translations_are_read_newest_first_and_filtered(db: TestDb) -> anyhow::Result<()> {
    synced(&db).await?;
    ensure!(db.store.vpn_translations(&TranslationFilter::default()).await?.is_empty(), "a new log is empty");
    let written = vec![
        translation(0, 1, [10, 80, 0, 4], [10, 60, 3, 10], 8080),
        translation(1, 3, [10, 80, 0, 8], [10, 60, 4, 10], 22),
        translation(2, 1, [10, 80, 0, 5], [10, 60, 4, 10], 8080),
        translation(3, 5, [10, 80, 0, 12], [10, 60, 3, 10], 443),
    ];
    db.store.record_vpn_translations(&written).await?;
    db.store.record_vpn_translations(&[]).await?;

    let all = db.store.vpn_translations(&TranslationFilter::default()).await?;
    let expected: Vec<NewVpnTranslation> = written.iter().rev().cloned().collect();
    ensure!(all == expected, "every field read back, newest first: {all:?}");

    let team1 = db.store.vpn_translations(&TranslationFilter { team: Some(TeamId(1)), ..Default::default() }).await?;
    let peers: Vec<Ipv4Addr> = team1.iter().map(|t| t.peer).collect();
    ensure!(peers == [Ipv4Addr::new(10, 80, 0, 5), Ipv4Addr::new(10, 80, 0, 4)], "{team1:?}");

    let four = Ipv4Addr::new(10, 60, 4, 10);
    let target = Some(four);
    let to_four = db.store.vpn_translations(&TranslationFilter { target, ..Default::default() }).await?;
    ensure!(to_four.len() == 2 && to_four.iter().all(|t| t.target == four), "{to_four:?}");

    // `since` is inclusive and `until` exclusive, to the millisecond.
    let window = TranslationFilter { since: Some(written[1].at), until: Some(written[3].at), ..Default::default() };
    let teams: Vec<u16> = db.store.vpn_translations(&window).await?.iter().map(|t| t.team.0).collect();
    ensure!(teams == [1, 3], "{teams:?}");

    let newest = db.store.vpn_translations(&TranslationFilter { limit: 1, ..Default::default() }).await?;
    ensure!(newest == [written[3].clone()], "{newest:?}");
    let both = TranslationFilter { team: Some(TeamId(1)), target, ..Default::default() };
    ensure!(db.store.vpn_translations(&both).await?.len() == 1);
    Ok(())
}

async fn a_translation_batch_is_all_or_nothing(db: TestDb) -> anyhow::Result<()> {
    synced(&db).await?;
    // More rows than one insert statement holds, so the batch spans several.
    let many: Vec<NewVpnTranslation> = (0..1200)
        .map(|i| translation(i, 1 + (i % 5) as u16, [10, 80, 0, 4 + (i % 5) as u8], [10, 60, 3, 10], 8080))
        .collect();
    db.store.record_vpn_translations(&many).await?;
    let read = db.store.vpn_translations(&TranslationFilter { limit: 5000, ..Default::default() }).await?;
    ensure!(read.len() == MAX_TRANSLATIONS as usize, "a read is capped: {}", read.len());
    ensure!(read[0] == many[1199], "the newest first: {:?}", read[0]);

    // A team the drill does not have spoils the whole batch, not just its row.
    let before = db.store.vpn_translations(&TranslationFilter { team: Some(TeamId(2)), ..Default::default() }).await?;
    let spoiled = [
        translation(5000, 2, [10, 80, 0, 8], [10, 60, 3, 10], 80),
        translation(5001, 999, [10, 80, 9, 9], [10, 60, 3, 10], 80),
    ];
    ensure!(db.store.record_vpn_translations(&spoiled).await.is_err(), "a row of an unknown team was stored");
    let after = db.store.vpn_translations(&TranslationFilter { team: Some(TeamId(2)), ..Default::default() }).await?;
    ensure!(after == before, "a failed batch left rows behind");
    Ok(())
}

async fn shell_keys_follow_their_peers_and_belong_to_one_team(db: TestDb) -> anyhow::Result<()> {
    synced(&db).await?;
    db.store.issue_vpn_peers("red-one", &peers("a", [10, 80, 0, 4], 2), false, t0()).await?;
    let added = db.store.register_shell_key("red-one", "ssh-ed25519 laptop", "laptop", t0()).await?;
    let ShellKeyAdded::Added(laptop) = added else { anyhow::bail!("registration refused: {added:?}") };
    let keys: Vec<(String, Option<u32>)> =
        db.store.shell_keys_of(TeamId(1)).await?.into_iter().map(|k| (k.public_key, k.peer)).collect();
    ensure!(
        keys == [
            ("ssh-ed25519 a-shell-1".to_owned(), Some(1)),
            ("ssh-ed25519 a-shell-2".to_owned(), Some(2)),
            ("ssh-ed25519 laptop".to_owned(), None)
        ],
        "{keys:?}"
    );

    // Rotation replaces the generated keys and keeps the registered one.
    db.store.issue_vpn_peers("red-one", &peers("r", [10, 80, 0, 4], 1), true, t0()).await?;
    let keys: Vec<String> = db.store.shell_keys_of(TeamId(1)).await?.into_iter().map(|k| k.public_key).collect();
    ensure!(keys == ["ssh-ed25519 laptop", "ssh-ed25519 r-shell-1"], "{keys:?}");

    // A fresh key for one peer (a credential pack from the console) replaces that peer's only.
    db.store.issue_vpn_peers("red-one", &peers("s", [10, 80, 0, 4], 2), true, t0()).await?;
    db.store.replace_peer_shell_key(TeamId(1), 2, "ssh-ed25519 fresh-2", t0()).await?;
    let mut keys: Vec<(String, Option<u32>)> =
        db.store.shell_keys_of(TeamId(1)).await?.into_iter().map(|k| (k.public_key, k.peer)).collect();
    keys.sort();
    ensure!(
        keys == [
            ("ssh-ed25519 fresh-2".to_owned(), Some(2)),
            ("ssh-ed25519 laptop".to_owned(), None),
            ("ssh-ed25519 s-shell-1".to_owned(), Some(1))
        ],
        "{keys:?}"
    );
    db.store.issue_vpn_peers("red-one", &peers("r", [10, 80, 0, 4], 1), true, t0()).await?;

    // A peer never issued is added alone, once; taken back only while it has the key it got.
    let added = db.store.add_vpn_peer(TeamId(1), &peers("n", [10, 80, 0, 6], 3)[2], t0()).await?;
    ensure!(added.as_ref().is_some_and(|p| p.peer == 3 && p.address.to_string() == "10.80.0.8"), "{added:?}");
    ensure!(db.store.add_vpn_peer(TeamId(1), &peers("m", [10, 80, 0, 6], 3)[2], t0()).await?.is_none());
    ensure!(!db.store.withdraw_vpn_peer(TeamId(1), 3, "another key").await?);
    ensure!(db.store.vpn_peers_of(TeamId(1)).await?.len() == 2);
    ensure!(db.store.withdraw_vpn_peer(TeamId(1), 3, &added.unwrap().public_key).await?);
    ensure!(db.store.vpn_peers_of(TeamId(1)).await?.len() == 1, "only peer 1 is left");

    // A key opens one team's shell only: another team cannot register it.
    let taken = db.store.register_shell_key("blue-one", "ssh-ed25519 laptop", "stolen", t0()).await?;
    ensure!(taken == ShellKeyAdded::Taken(TeamId(1)), "{taken:?}");
    ensure!(db.store.shell_keys_of(TeamId(3)).await?.is_empty());

    // Only registered keys are removed by id, and only by their own team.
    ensure!(!db.store.remove_shell_key("blue-one", laptop.id).await?);
    let generated = db.store.shell_keys_of(TeamId(1)).await?.into_iter().find(|k| k.peer.is_some()).unwrap();
    ensure!(!db.store.remove_shell_key("red-one", generated.id).await?);
    ensure!(db.store.remove_shell_key("red-one", laptop.id).await?);
    ensure!(db.store.shell_keys_of(TeamId(1)).await?.len() == 1);
    Ok(())
}
