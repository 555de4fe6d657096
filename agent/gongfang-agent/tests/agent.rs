//! The agent end to end: the built `gongfang-agent` binary against the real reports and flag
//! routes over a real SQLite store, as a red team files a report with a screenshot, lists it,
//! and meets the server's refusals; as a blue team registers a key for its shells; and behind
//! HTTPS, trusting the organisers' own certificate authority.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use base64::Engine as _;
use chrono::{Duration, Utc};
use gongfang_core::scenario::{self, AssumeEverythingExists};
use gongfang_reports::ReportsState;
use gongfang_store::DrillState;
use gongfang_test_support::TestDb;
use tokio::sync::broadcast;

/// Runs the agent as `red-firm` against `server`.
async fn agent(server: String, token: String, args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_gongfang-agent"))
            .args(&args)
            .env("GONGFANG_SERVER", server)
            .env("GONGFANG_TOKEN", token)
            .output()
            .expect("run gongfang-agent")
    })
    .await
    .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The reports routes over a fresh SQLite store, on loopback, for the red/blue example scenario
/// with `extra` appended: the database (kept alive), the server's address, the scenario, and a
/// token of team `team`.
async fn serve_routes(extra: &str, team: &str) -> (TestDb, std::net::SocketAddr, Arc<scenario::Scenario>, String) {
    let db = TestDb::sqlite().await;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../challenges/redblue/scenario.toml");
    let source = format!("{}\n{extra}", std::fs::read_to_string(&path).unwrap());
    let s = Arc::new(scenario::parse(&source, &path, &AssumeEverythingExists).unwrap());
    db.store.sync_scenario(&s).await.unwrap();
    let token = db.store.issue_token(team).await.unwrap().token.expose().to_owned();
    let (events, _) = broadcast::channel(16);
    let app = gongfang_reports::router(ReportsState::new(db.store.clone(), s.clone(), events));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (db, address, s, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_red_team_files_a_report_with_evidence_and_lists_it() {
    let dir = tempfile::tempdir().unwrap();
    let (db, address, _, token) = serve_routes("", "red-firm").await;
    let store = db.store.clone();
    let started = Utc::now() - Duration::hours(1);
    store
        .set_drill_state(DrillState { paused: false, current_tick: None, started_at: Some(started) }, started)
        .await
        .unwrap();
    let server = format!("http://{address}");

    let shot = dir.path().join("admin-panel.png");
    std::fs::write(&shot, b"\x89PNG\r\n\x1a\n0000IHDR-not-a-real-picture").unwrap();
    let window = |m: i64| (Utc::now() - Duration::minutes(m)).to_rfc3339();
    let mut file: Vec<String> = [
        "report",
        "file",
        "--kind",
        "attack",
        "--target-team",
        "ddb",
        "--service",
        "opendata",
        "--technique",
        "IDOR on dataset downloads",
        "--attack-id",
        "T1190",
        "--description",
        "Downloaded private datasets by id.",
        "--evidence",
        "GET /api/datasets/17/download -> 200",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    file.extend(["--from".into(), window(50), "--to".into(), window(40), "--file".into(), shot.display().to_string()]);
    let out = agent(server.clone(), token.clone(), file.clone()).await;
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).starts_with("filed: #1 attack pending opendata"), "{}", text(&out.stdout));

    // Stored with its evidence file, exactly.
    let stored = store.report(1).await.unwrap().expect("report 1 stored");
    assert_eq!(stored.evidence.len(), 1, "{stored:?}");
    let evidence = store.evidence(1, stored.evidence[0].id).await.unwrap().expect("evidence stored");
    assert_eq!(evidence.data, std::fs::read(&shot).unwrap());

    let out = agent(server.clone(), token.clone(), vec!["report".into(), "list".into()]).await;
    assert_eq!(text(&out.stdout).trim(), "#1 attack pending opendata points 0", "{}", text(&out.stderr));

    // The server's refusals reach the user as they are, and nothing is stored.
    let mut bad = file.clone();
    let id = bad.iter().position(|a| a == "T1190").unwrap();
    bad[id] = "T9999".into();
    let out = agent(server.clone(), token.clone(), bad).await;
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("T9999"), "says which id is wrong: {}", text(&out.stderr));
    let out = agent(server.clone(), "not-a-token".into(), vec!["report".into(), "list".into()]).await;
    assert!(!out.status.success() && text(&out.stderr).contains("401"), "{}", text(&out.stderr));
    assert_eq!(store.list_reports(None).await.unwrap().len(), 1, "refused reports are not stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blue_team_registers_lists_and_removes_a_shell_key() {
    let dir = tempfile::tempdir().unwrap();
    let vpn = "[vpn]\nlisten = \"203.0.113.7\"\nrange = \"10.80.0.0/16\"\n";
    let (db, address, s, token) = serve_routes(vpn, "ddb").await;
    let store = db.store.clone();
    let server = format!("http://{address}");

    // An Ed25519 public key as `ssh-keygen` writes it (its 32 key bytes all 9 here).
    let key = dir.path().join("id_ed25519.pub");
    let blob: Vec<u8> = [&11u32.to_be_bytes()[..], b"ssh-ed25519", &32u32.to_be_bytes(), &[9; 32]].concat();
    std::fs::write(
        &key,
        format!("ssh-ed25519 {} duty@ddb-laptop\n", base64::engine::general_purpose::STANDARD.encode(&blob)),
    )
    .unwrap();
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let out = agent(server.clone(), token.clone(), args(&["shell-key", "add", key.to_str().unwrap()])).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("(duty@ddb-laptop)"), "{}", text(&out.stdout));
    let ddb = s.teams.iter().find(|t| t.slug == "ddb").unwrap().id;
    let stored = store.shell_keys_of(ddb).await.unwrap();
    assert_eq!(stored.len(), 1);

    let out = agent(server.clone(), token.clone(), args(&["shell-key", "list"])).await;
    assert!(
        text(&out.stdout).contains("duty@ddb-laptop") && text(&out.stdout).contains("registered"),
        "{}",
        text(&out.stdout)
    );

    // Registering it again is refused with the server's reason.
    let out = agent(server.clone(), token.clone(), args(&["shell-key", "add", key.to_str().unwrap()])).await;
    assert!(!out.status.success() && text(&out.stderr).contains("has this key already"), "{}", text(&out.stderr));

    let id = stored[0].id.to_string();
    let out = agent(server.clone(), token.clone(), args(&["shell-key", "remove", &id])).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(store.shell_keys_of(ddb).await.unwrap().is_empty());
    let out = agent(server, token, args(&["shell-key", "remove", &id])).await;
    assert!(!out.status.success() && text(&out.stderr).contains("404"), "{}", text(&out.stderr));
}

/// A TLS terminator on loopback in front of `backend`, as an organiser's reverse proxy would
/// be; its address.
async fn tls_proxy(cert: &Path, key: &Path, backend: std::net::SocketAddr) -> std::net::SocketAddr {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject as _;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = vec![CertificateDer::from_pem_file(cert).unwrap()];
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let Ok(mut plain) = tokio::net::TcpStream::connect(backend).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    address
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_works_behind_https_with_the_organisers_certificate_authority() {
    let dir = tempfile::tempdir().unwrap();
    let (_db, backend, _, token) = serve_routes("", "red-firm").await;
    let gongfang_test_support::tls::Certificates { ca, cert, key } =
        gongfang_test_support::tls::certificates(dir.path());
    let proxy = tls_proxy(&cert, &key, backend).await;
    let server = format!("https://localhost:{}", proxy.port());
    let list = || vec!["report".to_owned(), "list".to_owned()];

    // Trusting the organisers' authority, the agent talks to the API through TLS.
    let ca_arg = ["--ca-cert".to_owned(), ca.display().to_string()];
    let out = agent(server.clone(), token.clone(), [&ca_arg[..], &list()].concat()).await;
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(text(&out.stdout), "", "no reports yet");
    let out = agent(server.clone(), "not-a-token".into(), [&ca_arg[..], &list()].concat()).await;
    assert!(
        !out.status.success() && text(&out.stderr).contains("401"),
        "the server's answer comes through: {}",
        text(&out.stderr)
    );

    // Without it, the handshake fails and the agent says how to fix it.
    let out = agent(server, token, list()).await;
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("--ca-cert"), "{}", text(&out.stderr));
}
