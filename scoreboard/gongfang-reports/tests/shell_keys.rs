//! Teams' SSH keys for their shells over real HTTP with the real store (SQLite always,
//! PostgreSQL when `GONGFANG_TEST_POSTGRES_URL` is set): a team registers, lists and removes
//! its own keys with its token, audited under the team; a key belongs to one team; bad keys,
//! a drill without a VPN and judges are refused with what to do.

mod common;

use anyhow::ensure;
use gongfang_core::scenario::{Ipv4Net, VpnRules};
use serde_json::{Value, json};

use common::*;

mod with_vpn {
    use super::*;
    gongfang_test_support::backend_tests!(
        setup = spawn_with_vpn;
        a_team_registers_lists_and_removes_its_keys,
        bad_keys_and_other_callers_are_refused,
    );
}

mod without_vpn {
    use super::*;
    gongfang_test_support::backend_tests!(
        setup = common::spawn;
        a_drill_without_a_vpn_has_no_shells,
    );
}

async fn spawn_with_vpn(db: gongfang_test_support::TestDb) -> App {
    spawn_with(db, |s| {
        s.vpn = Some(VpnRules {
            listen_host: "203.0.113.7".to_owned(),
            listen_port: 51820,
            range: Ipv4Net::parse("10.80.0.0/16").unwrap(),
            gateway: "10.80.0.1".parse().unwrap(),
            peers_per_team: 2,
            anonymise: false,
            shell_port: 2201,
        });
    })
    .await
}

/// An Ed25519 public key line with `fill` as its 32 key bytes.
fn key_line(fill: u8, comment: &str) -> String {
    use base64::Engine as _;
    let mut blob = Vec::new();
    for field in [&b"ssh-ed25519"[..], &[fill; 32][..]] {
        blob.extend_from_slice(&u32::try_from(field.len()).unwrap().to_be_bytes());
        blob.extend_from_slice(field);
    }
    format!("ssh-ed25519 {} {comment}", base64::engine::general_purpose::STANDARD.encode(blob)).trim().to_owned()
}

async fn post_key(app: &App, team: gongfang_core::TeamId, body: &Value) -> (u16, Value) {
    let auth = team_auth(app, team);
    let answer = app
        .request(
            "POST",
            "/api/shell-keys",
            &[(auth.0, &auth.1), ("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
        .await;
    (answer.status, answer.json().unwrap_or(Value::Null))
}

async fn a_team_registers_lists_and_removes_its_keys(app: App) -> anyhow::Result<()> {
    let laptop = key_line(1, "duty@laptop");
    let (status, added) = post_key(&app, MODA, &json!({ "key": format!("{laptop}\n") })).await;
    ensure!(status == 201, "{status} {added}");
    ensure!(added["label"] == "duty@laptop" && added["peer"].is_null(), "{added}");
    ensure!(added["public_key"] == laptop.rsplit_once(' ').unwrap().0, "kept without the comment: {added}");

    let auth = team_auth(&app, MODA);
    let listed = app.request("GET", "/api/shell-keys", &[(auth.0, &auth.1)], b"").await.json()?;
    ensure!(listed.as_array().map(Vec::len) == Some(1) && listed[0]["id"] == added["id"], "{listed}");
    let keys = app.store.shell_keys_of(MODA).await?;
    ensure!(keys.len() == 1 && keys[0].public_key == added["public_key"], "{keys:?}");

    // Another team's list does not show it, nor can that team remove it.
    let other = team_auth(&app, MOI);
    let theirs = app.request("GET", "/api/shell-keys", &[(other.0, &other.1)], b"").await.json()?;
    ensure!(theirs == json!([]), "{theirs}");
    let path = format!("/api/shell-keys/{}", added["id"]);
    let refused = app.request("DELETE", &path, &[(other.0, &other.1)], b"").await;
    ensure!(refused.status == 404 && refused.text().contains("unknown_shell_key"), "{}", refused.text());

    let removed = app.request("DELETE", &path, &[(auth.0, &auth.1)], b"").await;
    ensure!(removed.status == 204, "{}", removed.text());
    ensure!(app.store.shell_keys_of(MODA).await?.is_empty());
    let again = app.request("DELETE", &path, &[(auth.0, &auth.1)], b"").await;
    ensure!(again.status == 404, "{}", again.text());

    let audit = app.store.list_audit(None, 50).await?;
    let moda = app.scenario.team(MODA).unwrap().slug.clone();
    let entries: Vec<(String, String)> = audit
        .iter()
        .filter(|e| e.action.starts_with("shell.key"))
        .map(|e| (e.actor.clone(), e.action.clone()))
        .collect();
    let actor = format!("team {moda}");
    ensure!(entries.contains(&(actor.clone(), "shell.key.add".to_owned())), "{entries:?}");
    ensure!(entries.contains(&(actor, "shell.key.remove".to_owned())), "{entries:?}");
    Ok(())
}

async fn bad_keys_and_other_callers_are_refused(app: App) -> anyhow::Result<()> {
    let laptop = key_line(2, "");
    let (status, _) = post_key(&app, MODA, &json!({ "key": laptop, "label": "laptop" })).await;
    ensure!(status == 201);
    // A key belongs to one team.
    let (status, body) = post_key(&app, MODA, &json!({ "key": laptop })).await;
    ensure!(status == 409 && body.to_string().contains("your team has this key already"), "{status} {body}");
    let (status, body) = post_key(&app, MOI, &json!({ "key": laptop })).await;
    ensure!(status == 409 && body.to_string().contains("belongs to another team"), "{status} {body}");
    // Keys that are not usable public keys, and bad labels.
    for (key, expected) in [
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn", "this is a private key"),
        ("ssh-rsa AAAAB3NzaC1yc2E= x", "`ssh-rsa` keys are not taken"),
        ("ssh-ed25519 AAAA", "not valid OpenSSH base64"),
        ("", "no key"),
    ] {
        let (status, body) = post_key(&app, MODA, &json!({ "key": key })).await;
        ensure!(status == 400 && body.to_string().contains(expected), "{key:?}: {status} {body}");
    }
    let (status, body) = post_key(&app, MODA, &json!({ "key": key_line(3, ""), "label": "a\nb" })).await;
    ensure!(status == 400 && body.to_string().contains("`label`"), "{status} {body}");
    let (status, body) = post_key(&app, MODA, &json!({ "key": key_line(3, ""), "extra": 1 })).await;
    ensure!(status == 400, "unknown fields are refused: {status} {body}");
    // Only the one registered key was stored.
    ensure!(app.store.shell_keys_of(MODA).await?.len() == 1);
    ensure!(app.store.shell_keys_of(MOI).await?.is_empty());
    // Without a token, or as a judge: refused.
    let none = app.request("GET", "/api/shell-keys", &[], b"").await;
    ensure!(none.status == 401, "{}", none.text());
    let judge = judge_auth(&app, ANA).await;
    let as_judge = app.request("GET", "/api/shell-keys", &[(judge.0, &judge.1)], b"").await;
    ensure!(as_judge.status == 403 && as_judge.text().contains("teams_only"), "{}", as_judge.text());
    Ok(())
}

async fn a_drill_without_a_vpn_has_no_shells(app: App) -> anyhow::Result<()> {
    let (status, body) = post_key(&app, MODA, &json!({ "key": key_line(4, "") })).await;
    ensure!(status == 404 && body.to_string().contains("no [vpn] table"), "{status} {body}");
    ensure!(app.store.shell_keys_of(MODA).await?.is_empty());
    Ok(())
}
