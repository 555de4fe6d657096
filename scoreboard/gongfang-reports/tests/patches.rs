//! Teams' submitted patches over real HTTP with the real store (SQLite always, PostgreSQL when
//! `GONGFANG_TEST_POSTGRES_URL` is set): a defending team sends patches and sees them queued
//! with their place, numbered and audited under the team; it reads only its own, downloads the
//! source its service runs, and asks for a rollback; oversized bodies, a full queue, unknown
//! services and versions, attackers, services in vulnbox mode and a drill that builds no
//! patches are refused with what to do.

mod common;

use anyhow::ensure;
use gongfang_core::scenario::PatchMode;
use serde_json::{Value, json};

use common::*;

mod with_builds {
    use super::*;
    gongfang_test_support::backend_tests!(
        setup = spawn_with_builds;
        a_defender_sends_follows_and_downloads_its_patches,
        bad_patches_and_callers_are_refused,
    );
}

mod without_builds {
    use super::*;
    gongfang_test_support::backend_tests!(
        setup = spawn_without_builds;
        nothing_is_queued_where_no_patch_is_built,
    );
}

mod in_vulnbox {
    use super::*;
    gongfang_test_support::backend_tests!(
        setup = spawn_vulnbox;
        a_service_patched_in_place_takes_no_patch,
    );
}

async fn spawn_vulnbox(db: gongfang_test_support::TestDb) -> App {
    spawn_configured(db, |_| {}, |state| state.with_patch_builds()).await
}

async fn a_service_patched_in_place_takes_no_patch(app: App) -> anyhow::Result<()> {
    let (status, answer) = send(&app, DDB, "/api/patches?service=opendata", DIFF).await;
    ensure!(status == 409 && answer["error"]["code"] == "not_patchable", "{status} {answer}");
    ensure!(answer["error"]["message"].as_str().unwrap_or_default().contains("vulnbox"), "{answer}");
    app.stop().await;
    Ok(())
}

fn submitted(s: &mut gongfang_core::scenario::Scenario) {
    s.services[0].patch_mode = PatchMode::Submit;
    s.patches.max_size = 4096;
    s.patches.max_queued = 2;
}

async fn spawn_with_builds(db: gongfang_test_support::TestDb) -> App {
    spawn_configured(db, submitted, |state| state.with_patch_builds()).await
}

async fn spawn_without_builds(db: gongfang_test_support::TestDb) -> App {
    spawn_configured(db, submitted, |state| state).await
}

const DIFF: &[u8] = b"--- a/app.py\n+++ b/app.py\n@@ -1 +1 @@\n-x\n+y\n";

async fn send(app: &App, team: gongfang_core::TeamId, path: &str, body: &[u8]) -> (u16, Value) {
    let auth = team_auth(app, team);
    let answer =
        app.request("POST", path, &[(auth.0, &auth.1), ("Content-Type", "application/octet-stream")], body).await;
    (answer.status, answer.json().unwrap_or(Value::Null))
}

async fn get(app: &App, team: gongfang_core::TeamId, path: &str) -> (u16, Value) {
    let auth = team_auth(app, team);
    let answer = app.request("GET", path, &[(auth.0, &auth.1)], b"").await;
    (answer.status, answer.json().unwrap_or(Value::Null))
}

async fn a_defender_sends_follows_and_downloads_its_patches(app: App) -> anyhow::Result<()> {
    let (status, first) = send(&app, DDB, "/api/patches?service=opendata", DIFF).await;
    ensure!(status == 202, "{status} {first}");
    ensure!(first["status"] == "queued" && first["queue_position"] == 1 && first["version"] == 1, "{first}");
    ensure!(first["kind"] == "diff" && first["size"] == DIFF.len(), "told a diff from its bytes: {first}");
    let (_, other) = send(&app, CRD, "/api/patches?service=opendata&kind=tar", b"not really a tar").await;
    ensure!(other["queue_position"] == 2 && other["kind"] == "tar", "{other}");
    let (_, second) = send(&app, DDB, "/api/patches?service=opendata", DIFF).await;
    ensure!(second["version"] == 2 && second["queue_position"] == 3, "{second}");

    let (status, listed) = get(&app, DDB, "/api/patches?service=opendata").await;
    ensure!(status == 200, "{listed}");
    let ids: Vec<&Value> = listed.as_array().unwrap().iter().map(|p| &p["id"]).collect();
    ensure!(ids == [&second["id"], &first["id"]], "its own, newest first: {listed}");
    let (status, one) = get(&app, DDB, &format!("/api/patches/{}", first["id"])).await;
    ensure!(status == 200 && one["sha256"] == first["sha256"], "{one}");
    // Another team's patch is answered as if it did not exist.
    let (status, theirs) = get(&app, DDB, &format!("/api/patches/{}", other["id"])).await;
    ensure!(status == 404 && theirs["error"]["code"] == "unknown_patch", "{status} {theirs}");

    // The source it runs now: the organisers' folder, until a patch is deployed.
    let service = app.scenario.services[0].id;
    app.store.put_source(service, b"the folder as a tar", true, started()).await?;
    let auth = team_auth(&app, DDB);
    let source = app.request("GET", "/api/patches/source?service=opendata", &[(auth.0, &auth.1)], b"").await;
    ensure!(source.status == 200 && source.body == b"the folder as a tar", "{}", source.text());
    ensure!(source.header("x-gongfang-version") == Some("0"), "{:?}", source.header("x-gongfang-version"));

    let headers = [(auth.0, auth.1.as_str()), ("Content-Type", "application/json")];
    let body = json!({ "service": "opendata", "version": 0 }).to_string();
    let answer = app.request("POST", "/api/patches/rollback", &headers, body.as_bytes()).await;
    // Two of the team's patches wait already: the rollback is over its queue.
    ensure!(answer.status == 429, "{}", answer.text());
    let audit = app.store.list_audit(None, 100).await?;
    let ddb = audit.iter().filter(|a| a.action == "patch.submit" && a.actor == "team ddb").count();
    ensure!(ddb == 2, "every patch audited under its team: {audit:?}");
    app.stop().await;
    Ok(())
}

async fn bad_patches_and_callers_are_refused(app: App) -> anyhow::Result<()> {
    let big = vec![b'+'; 5000];
    let (status, answer) = send(&app, DDB, "/api/patches?service=opendata", &big).await;
    ensure!(status == 413 && answer["error"]["code"] == "patch_too_large", "{status} {answer}");
    ensure!(answer["error"]["message"].as_str().unwrap_or_default().contains("4096 bytes"), "{answer}");
    let (status, answer) = send(&app, DDB, "/api/patches?service=bank", DIFF).await;
    ensure!(status == 400 && answer["error"]["code"] == "unknown_service", "{status} {answer}");
    let (status, answer) = send(&app, DDB, "/api/patches?service=opendata", b"").await;
    ensure!(status == 400 && answer["error"]["message"].as_str().unwrap_or_default().contains("empty"), "{answer}");
    let (status, answer) = send(&app, DDB, "/api/patches?service=opendata&kind=zip", DIFF).await;
    ensure!(status == 400 && answer["error"]["message"].as_str().unwrap_or_default().contains("`diff` or `tar`"));
    let (status, answer) = send(&app, RED_FIRM, "/api/patches?service=opendata", DIFF).await;
    ensure!(status == 403 && answer["error"]["code"] == "not_a_defender", "{status} {answer}");
    let answer = app.request("POST", "/api/patches?service=opendata", &[], DIFF).await;
    ensure!(answer.status == 401, "no token: {}", answer.text());

    let auth = team_auth(&app, DDB);
    let headers = [(auth.0, auth.1.as_str()), ("Content-Type", "application/json")];
    let body = json!({ "service": "opendata", "version": 3 }).to_string();
    let answer = app.request("POST", "/api/patches/rollback", &headers, body.as_bytes()).await;
    ensure!(answer.status == 404 && answer.json()?["error"]["code"] == "no_such_version", "{}", answer.text());
    let body = json!({ "service": "opendata", "version": 0 }).to_string();
    let answer = app.request("POST", "/api/patches/rollback", &headers, body.as_bytes()).await;
    ensure!(answer.status == 202 && answer.json()?["kind"] == "rollback", "{}", answer.text());
    ensure!(app.store.patches_of(DDB, None, 10).await?.len() == 1, "only the rollback was taken");
    app.stop().await;
    Ok(())
}

async fn nothing_is_queued_where_no_patch_is_built(app: App) -> anyhow::Result<()> {
    let (status, answer) = send(&app, DDB, "/api/patches?service=opendata", DIFF).await;
    ensure!(status == 503 && answer["error"]["code"] == "no_patch_builds", "{status} {answer}");
    ensure!(answer["error"]["message"].as_str().unwrap_or_default().contains("gongfang serve"), "{answer}");
    ensure!(app.store.patches_of(DDB, None, 10).await?.is_empty());
    app.stop().await;
    Ok(())
}
