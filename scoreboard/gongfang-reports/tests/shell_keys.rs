//! Teams' SSH keys for their shells and their VPN configs from the portal, over real HTTP with
//! the real store (SQLite always, PostgreSQL when `GONGFANG_TEST_POSTGRES_URL` is set): a team
//! registers, lists and removes its own keys with its token, audited under the team; a key
//! belongs to one team; bad keys, a drill without a VPN and judges are refused with what to
//! do. A team gets a fresh config for one of its peers as a download, its new key stored in
//! place of the old one; the drill's gateway is stood in for by a [`VpnAccess`] over the store
//! (the real one, with WireGuard tunnels, is in the end-to-end drill over WireGuard).

mod common;

use std::sync::Arc;

use anyhow::ensure;
use gongfang_core::scenario::{Ipv4Net, VpnRules};
use gongfang_reports::{Reissued, SecretFile, VpnAccess, VpnFuture, VpnRefusal};
use gongfang_store::NewVpnPeer;
use serde_json::{Value, json};

use common::*;

mod with_vpn {
    use super::*;
    gongfang_test_support::backend_tests!(
        setup = spawn_with_vpn;
        a_team_registers_lists_and_removes_its_keys,
        bad_keys_and_other_callers_are_refused,
    );

    mod configs {
        use super::*;
        gongfang_test_support::backend_tests!(
            setup = spawn_with_vpn_configs;
            a_team_downloads_a_fresh_config_for_one_of_its_peers,
            an_organiser_downloads_a_teams_credential_pack,
        );
    }
}

mod without_vpn {
    use super::*;
    gongfang_test_support::backend_tests!(
        setup = common::spawn;
        a_drill_without_a_vpn_has_no_shells,
        a_drill_without_a_vpn_has_no_configs,
    );
}

fn with_vpn(s: &mut gongfang_core::scenario::Scenario) {
    s.vpn = Some(VpnRules {
        listen_host: "203.0.113.7".to_owned(),
        listen_port: 51820,
        range: Ipv4Net::parse("10.80.0.0/16").unwrap(),
        gateway: "10.80.0.1".parse().unwrap(),
        peers_per_team: 2,
        anonymise: false,
        shell_port: 2201,
    });
}

async fn spawn_with_vpn(db: gongfang_test_support::TestDb) -> App {
    spawn_with(db, with_vpn).await
}

/// Makes each fresh config's key from a counter and stores it as the real gateway's access
/// does; its config text names the key, so the test can see which one it got.
struct StoredKeys {
    store: gongfang_store::Store,
    made: std::sync::atomic::AtomicU8,
}

impl VpnAccess for StoredKeys {
    fn reissue<'a>(&'a self, team: &'a gongfang_core::scenario::Team, peer: u32, shell_key: bool) -> VpnFuture<'a> {
        Box::pin(async move {
            let n = self.made.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let public_key = format!("{}=", char::from(b'a' + n).to_string().repeat(43));
            let now = chrono::Utc::now();
            let new = match self.store.rotate_vpn_peer(team.id, peer, &public_key, now).await {
                Ok(Some((_, new))) => new,
                // A peer never issued, within the drill's two per team, is issued now.
                Ok(None) if peer <= 2 => {
                    let address = format!("10.80.{}.{}", team.id.0, peer + 1).parse().unwrap();
                    let first = NewVpnPeer { peer, public_key, address, shell_key: None };
                    match self.store.add_vpn_peer(team.id, &first, now).await {
                        Ok(Some(new)) => new,
                        Ok(None) => return Err(VpnRefusal::Failed("issued meanwhile".to_owned())),
                        Err(error) => return Err(VpnRefusal::Failed(error.to_string())),
                    }
                }
                Ok(None) => return Err(VpnRefusal::UnknownPeer(peer)),
                Err(error) => return Err(VpnRefusal::Failed(error.to_string())),
            };
            let config = SecretFile {
                file_name: format!("{}-{peer}.conf", team.slug),
                text: format!("[Interface]\n# public {}\nAddress = {}/32\n", new.public_key, new.address).into(),
            };
            let shell_key = if shell_key {
                let public = format!("ssh-ed25519 made-{n}");
                self.store
                    .replace_peer_shell_key(team.id, peer, &public, now)
                    .await
                    .map_err(|e| VpnRefusal::Failed(e.to_string()))?;
                Some(SecretFile {
                    file_name: format!("{}-{peer}.ssh", team.slug),
                    text: format!("private of {public}\n").into(),
                })
            } else {
                None
            };
            Ok(Reissued { config, shell_key })
        })
    }
}

async fn spawn_with_vpn_configs(db: gongfang_test_support::TestDb) -> App {
    let store = db.store.clone();
    let keys = Arc::new(StoredKeys { store, made: Default::default() });
    spawn_configured(db, with_vpn, move |state| state.with_vpn_access(keys)).await
}

async fn a_team_downloads_a_fresh_config_for_one_of_its_peers(app: App) -> anyhow::Result<()> {
    let peers: Vec<NewVpnPeer> = (1..=2)
        .map(|n| NewVpnPeer {
            peer: n,
            public_key: format!("{}=", "Z".repeat(42) + &n.to_string()),
            address: format!("10.80.0.{}", n + 1).parse().unwrap(),
            shell_key: None,
        })
        .collect();
    app.store.issue_vpn_peers("ddb", &peers, false, chrono::Utc::now()).await?;
    let ddb = team_auth(&app, DDB);
    let json = ("Content-Type", "application/json");

    let portal = app.request("GET", "/api/portal", &[(ddb.0, &ddb.1)], b"").await;
    let listed = portal.json()?["vpn"].clone();
    ensure!(
        listed.as_array().map(Vec::len) == Some(2) && listed[1]["address"] == "10.80.0.3",
        "the portal lists the team's peers: {listed}"
    );
    ensure!(!portal.text().contains("ZZZZ"), "and no key: {}", portal.text());
    let crd_auth = team_auth(&app, CRD);
    let crd = app.request("GET", "/api/portal", &[(crd_auth.0, &crd_auth.1)], b"").await;
    ensure!(crd.json()?["vpn"] == json!([]), "another team sees none of them: {}", crd.text());

    let r = app.request("POST", "/api/portal/vpn", &[(ddb.0, &ddb.1), json], br#"{"peer":2}"#).await;
    ensure!(r.status == 200, "{}", r.text());
    ensure!(
        r.header("content-disposition") == Some("attachment; filename=\"ddb-2.conf\"")
            && r.header("cache-control") == Some("no-store")
            && r.header("content-type").is_some_and(|t| t.starts_with("text/plain")),
        "a download that is not kept: {:?}",
        r.headers
    );
    let now = app.store.vpn_peers_of(DDB).await?;
    ensure!(r.text().contains(&now[1].public_key) && r.text().contains("10.80.0.3/32"), "{}", r.text());
    ensure!(now[1].public_key != peers[1].public_key && now[1].rotated_at.is_some(), "the new key is stored: {now:?}");
    ensure!(now[0].public_key == peers[0].public_key, "the other peer keeps its key: {now:?}");

    let r = app.request("POST", "/api/portal/vpn", &[(ddb.0, &ddb.1), json], br#"{"peer":9}"#).await;
    ensure!(r.status == 400 && r.text().contains("no VPN peer 9"), "{}", r.text());
    let ana = judge_auth(&app, ANA).await;
    let r = app.request("POST", "/api/portal/vpn", &[(ana.0, &ana.1), json], br#"{"peer":1}"#).await;
    ensure!(r.status == 403, "a judge gets no team's config: {}", r.text());
    ensure!(app.store.vpn_peers_of(DDB).await?[0].public_key == peers[0].public_key, "refusals change nothing");

    let audit = app.store.list_audit(None, 20).await?;
    let reissued: Vec<_> = audit
        .iter()
        .filter(|a| a.action == "vpn.config.reissue")
        .map(|a| (a.actor.as_str(), a.detail.clone()))
        .collect();
    ensure!(reissued == [("team ddb", json!({ "peer": 2 }))], "audited under the team, without a key: {reissued:?}");
    Ok(())
}

async fn an_organiser_downloads_a_teams_credential_pack(app: App) -> anyhow::Result<()> {
    let peers: Vec<NewVpnPeer> = (1..=2)
        .map(|n| NewVpnPeer {
            peer: n,
            public_key: format!("{}=", "Z".repeat(42) + &n.to_string()),
            address: format!("10.80.0.{}", n + 1).parse().unwrap(),
            shell_key: Some(format!("ssh-ed25519 first-{n}")),
        })
        .collect();
    app.store.issue_vpn_peers("ddb", &peers, false, chrono::Utc::now()).await?;
    let old = team_auth(&app, DDB);
    let olga = app.store.issue_api_token("olga", at(0)).await?.expect("olga is an organiser");
    let olga = ("Authorization", format!("Bearer {}", olga.expose()));
    app.store.create_account("oscar", gongfang_core::AccountRole::Observer, "observer password").await?;
    let oscar = app.store.issue_api_token("oscar", at(0)).await?.expect("oscar exists");
    let oscar = ("Authorization", format!("Bearer {}", oscar.expose()));
    let json = ("Content-Type", "application/json");
    let body = br#"{"team":"ddb","web":"https://drill.example.hk/","submission":"10.80.0.1:31337"}"#;

    let r = app.request("POST", "/api/admin/teams/pack", &[(oscar.0, &oscar.1), json], body).await;
    ensure!(r.status == 403, "an observer makes no pack: {}", r.text());
    let r = app.request("POST", "/api/admin/teams/pack", &[(old.0, &old.1), json], body).await;
    ensure!(r.status == 401, "nor does a team: {}", r.text());
    let bad = br#"{"team":"ddb","web":"drill.example.hk"}"#;
    let r = app.request("POST", "/api/admin/teams/pack", &[(olga.0, &olga.1), json], bad).await;
    ensure!(r.status == 400 && r.text().contains("https://drill.example.hk"), "{}", r.text());
    let keys: Vec<String> = app.store.vpn_peers_of(DDB).await?.into_iter().map(|p| p.public_key).collect();
    ensure!(keys == [peers[0].public_key.clone(), peers[1].public_key.clone()], "refusals change no key: {keys:?}");
    let r = app.request("GET", "/api/reports", &[(old.0, &old.1)], b"").await;
    ensure!(r.status == 200, "refusals change nothing: {}", r.text());

    let r = app.request("POST", "/api/admin/teams/pack", &[(olga.0, &olga.1), json], body).await;
    ensure!(r.status == 200, "{}", r.text());
    ensure!(
        r.header("content-type") == Some("application/gzip")
            && r.header("cache-control") == Some("no-store")
            && r.header("content-disposition") == Some("attachment; filename=\"ddb-pack.tar.gz\""),
        "a download that is not kept: {:?}",
        r.headers
    );
    let mut files = std::collections::BTreeMap::new();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(r.body.as_slice()));
    for entry in archive.entries()? {
        let mut entry = entry?;
        let mut text = String::new();
        std::io::Read::read_to_string(&mut entry, &mut text)?;
        files.insert(entry.path()?.display().to_string(), (entry.header().mode()?, text));
    }
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    ensure!(
        names
            == [
                "ddb/",
                "ddb/ddb-1.conf",
                "ddb/ddb-1.ssh",
                "ddb/ddb-2.conf",
                "ddb/ddb-2.ssh",
                "ddb/how-to.html",
                "ddb/token.txt"
            ],
        "{names:?}"
    );
    ensure!(files.values().filter(|(mode, _)| *mode == 0o600).count() == 6, "private files: {files:?}");

    let token = files["ddb/token.txt"].1.trim().to_owned();
    let r = app.request("GET", "/api/reports", &[("X-Team-Token", &token)], b"").await;
    ensure!(r.status == 200, "the pack's token works: {}", r.text());
    let r = app.request("GET", "/api/reports", &[(old.0, &old.1)], b"").await;
    ensure!(r.status == 401, "and the old one no longer: {}", r.text());
    let stored = app.store.vpn_peers_of(DDB).await?;
    for (peer, was) in stored.iter().zip(&peers) {
        let config = &files[&format!("ddb/ddb-{}.conf", peer.peer)].1;
        ensure!(peer.public_key != was.public_key && config.contains(&peer.public_key), "{config} {peer:?}");
    }
    let mut shell: Vec<String> = app.store.shell_keys_of(DDB).await?.into_iter().map(|k| k.public_key).collect();
    shell.sort();
    ensure!(!shell.iter().any(|k| k.contains("first-")), "the old shell keys are gone: {shell:?}");
    ensure!(files["ddb/ddb-2.ssh"].1.contains(&shell[1]), "the pack holds the stored key's private half");
    // A blue team's how-to: its shell, and no flag submission.
    let how_to = &files["ddb/how-to.html"].1;
    ensure!(
        how_to.contains(&token)
            && how_to.contains("https://drill.example.hk/portal")
            && how_to.contains("ssh -i ddb-1.ssh")
            && !how_to.contains("nc 10.80.0.1 31337")
            && how_to.contains("ddb-1.conf")
            && how_to.contains("隊伍權杖"),
        "{how_to}"
    );

    // A team never issued VPN configs (added during the drill) gets its first ones.
    ensure!(app.store.vpn_peers_of(CRD).await?.is_empty());
    let unissued = br#"{"team":"crd","web":"https://drill.example.hk"}"#;
    let r = app.request("POST", "/api/admin/teams/pack", &[(olga.0, &olga.1), json], unissued).await;
    ensure!(r.status == 200, "{}", r.text());
    let issued = app.store.vpn_peers_of(CRD).await?;
    ensure!(issued.iter().map(|p| p.peer).eq([1, 2]), "both of its peers are issued: {issued:?}");
    ensure!(app.store.shell_keys_of(CRD).await?.len() == 2, "with a shell key each");

    let audit = app.store.list_audit(None, 20).await?;
    let packed: Vec<_> = audit
        .iter()
        .filter(|a| a.action == "team.pack" && a.detail["team"] == "ddb")
        .map(|a| (a.actor.as_str(), a.detail.clone()))
        .collect();
    ensure!(
        packed == [("account olga", json!({ "team": "ddb", "vpn": true, "web": "https://drill.example.hk" }))],
        "audited under the account, without a secret: {packed:?}"
    );
    Ok(())
}

async fn a_drill_without_a_vpn_has_no_configs(app: App) -> anyhow::Result<()> {
    let ddb = team_auth(&app, DDB);
    let r = app
        .request("POST", "/api/portal/vpn", &[(ddb.0, &ddb.1), ("Content-Type", "application/json")], br#"{"peer":1}"#)
        .await;
    ensure!(r.status == 400 && r.text().contains("no VPN"), "{}", r.text());
    Ok(())
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
    let (status, added) = post_key(&app, DDB, &json!({ "key": format!("{laptop}\n") })).await;
    ensure!(status == 201, "{status} {added}");
    ensure!(added["label"] == "duty@laptop" && added["peer"].is_null(), "{added}");
    ensure!(added["public_key"] == laptop.rsplit_once(' ').unwrap().0, "kept without the comment: {added}");

    let auth = team_auth(&app, DDB);
    let listed = app.request("GET", "/api/shell-keys", &[(auth.0, &auth.1)], b"").await.json()?;
    ensure!(listed.as_array().map(Vec::len) == Some(1) && listed[0]["id"] == added["id"], "{listed}");
    let keys = app.store.shell_keys_of(DDB).await?;
    ensure!(keys.len() == 1 && keys[0].public_key == added["public_key"], "{keys:?}");

    // Another team's list does not show it, nor can that team remove it.
    let other = team_auth(&app, CRD);
    let theirs = app.request("GET", "/api/shell-keys", &[(other.0, &other.1)], b"").await.json()?;
    ensure!(theirs == json!([]), "{theirs}");
    let path = format!("/api/shell-keys/{}", added["id"]);
    let refused = app.request("DELETE", &path, &[(other.0, &other.1)], b"").await;
    ensure!(refused.status == 404 && refused.text().contains("unknown_shell_key"), "{}", refused.text());

    let removed = app.request("DELETE", &path, &[(auth.0, &auth.1)], b"").await;
    ensure!(removed.status == 204, "{}", removed.text());
    ensure!(app.store.shell_keys_of(DDB).await?.is_empty());
    let again = app.request("DELETE", &path, &[(auth.0, &auth.1)], b"").await;
    ensure!(again.status == 404, "{}", again.text());

    let audit = app.store.list_audit(None, 50).await?;
    let ddb = app.scenario.team(DDB).unwrap().slug.clone();
    let entries: Vec<(String, String)> = audit
        .iter()
        .filter(|e| e.action.starts_with("shell.key"))
        .map(|e| (e.actor.clone(), e.action.clone()))
        .collect();
    let actor = format!("team {ddb}");
    ensure!(entries.contains(&(actor.clone(), "shell.key.add".to_owned())), "{entries:?}");
    ensure!(entries.contains(&(actor, "shell.key.remove".to_owned())), "{entries:?}");
    Ok(())
}

async fn bad_keys_and_other_callers_are_refused(app: App) -> anyhow::Result<()> {
    let laptop = key_line(2, "");
    let (status, _) = post_key(&app, DDB, &json!({ "key": laptop, "label": "laptop" })).await;
    ensure!(status == 201);
    // A key belongs to one team.
    let (status, body) = post_key(&app, DDB, &json!({ "key": laptop })).await;
    ensure!(status == 409 && body.to_string().contains("your team has this key already"), "{status} {body}");
    let (status, body) = post_key(&app, CRD, &json!({ "key": laptop })).await;
    ensure!(status == 409 && body.to_string().contains("belongs to another team"), "{status} {body}");
    // Keys that are not usable public keys, and bad labels.
    for (key, expected) in [
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn", "this is a private key"),
        ("ssh-rsa AAAAB3NzaC1yc2E= x", "`ssh-rsa` keys are not taken"),
        ("ssh-ed25519 AAAA", "not valid OpenSSH base64"),
        ("", "no key"),
    ] {
        let (status, body) = post_key(&app, DDB, &json!({ "key": key })).await;
        ensure!(status == 400 && body.to_string().contains(expected), "{key:?}: {status} {body}");
    }
    let (status, body) = post_key(&app, DDB, &json!({ "key": key_line(3, ""), "label": "a\nb" })).await;
    ensure!(status == 400 && body.to_string().contains("`label`"), "{status} {body}");
    let (status, body) = post_key(&app, DDB, &json!({ "key": key_line(3, ""), "extra": 1 })).await;
    ensure!(status == 400, "unknown fields are refused: {status} {body}");
    // Only the one registered key was stored.
    ensure!(app.store.shell_keys_of(DDB).await?.len() == 1);
    ensure!(app.store.shell_keys_of(CRD).await?.is_empty());
    // Without a token, or as a judge: refused.
    let none = app.request("GET", "/api/shell-keys", &[], b"").await;
    ensure!(none.status == 401, "{}", none.text());
    let judge = judge_auth(&app, ANA).await;
    let as_judge = app.request("GET", "/api/shell-keys", &[(judge.0, &judge.1)], b"").await;
    ensure!(as_judge.status == 403 && as_judge.text().contains("teams_only"), "{}", as_judge.text());
    Ok(())
}

async fn a_drill_without_a_vpn_has_no_shells(app: App) -> anyhow::Result<()> {
    let (status, body) = post_key(&app, DDB, &json!({ "key": key_line(4, "") })).await;
    ensure!(status == 404 && body.to_string().contains("no [vpn] table"), "{status} {body}");
    ensure!(app.store.shell_keys_of(DDB).await?.is_empty());
    Ok(())
}
