//! The orchestrator on the real Docker engine: 3 teams x 2 services (one with a database
//! sidecar on a private network), addresses, reachability, isolation from inside the
//! containers, hardening as the engine reports it, reset, reconcile after a kill, teardown.
//! Skips with a message where no engine exists; `GONGFANG_REQUIRE_DOCKER=1` makes that a failure.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, TcpListener};
use std::time::Duration;

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, ListImagesOptionsBuilder, ListNetworksOptionsBuilder,
    ListVolumesOptionsBuilder,
};
use common::{DrillGuard, ask, drill, engine, scenario, service, service_context, team};
use gongfang_core::scenario::{ImageSource, Ipv4Net, Role};
use gongfang_docker::{Backend, Engine, Firewall, Orchestrator, Runtime, ServiceExtras, Settings, Sidecar, labels};
use serde_json::Value;

const PATIENCE: Duration = Duration::from_secs(30);

fn settings(pool: &str) -> Settings {
    let db = Sidecar {
        name: "db".into(),
        source: ImageSource::Build(service_context()),
        env: vec![],
        hardening: Default::default(),
    };
    Settings {
        private_pool: Ipv4Net::parse(pool).unwrap(),
        services: BTreeMap::from([("web".to_owned(), ServiceExtras { sidecars: vec![db], ..Default::default() })]),
        ..Settings::default()
    }
}

async fn remaining(engine: &Engine, drill: &str) -> (usize, usize, usize) {
    let d = engine.docker();
    let f = labels::drill_filter(drill);
    let c =
        d.list_containers(Some(ListContainersOptionsBuilder::new().all(true).filters(&f).build())).await.unwrap().len();
    let n = d.list_networks(Some(ListNetworksOptionsBuilder::new().filters(&f).build())).await.unwrap().len();
    let v = d
        .list_volumes(Some(ListVolumesOptionsBuilder::new().filters(&f).build()))
        .await
        .unwrap()
        .volumes
        .unwrap_or_default()
        .len();
    (c, n, v)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_teams_isolated_hardened_reset_and_torn_down() {
    let Some(engine) = engine(Backend::Docker) else { return };
    let drill = drill("iso");
    let _guard = DrillGuard { drill: drill.clone(), backend: Backend::Docker };
    let ctx = ImageSource::Build(service_context());
    let s = scenario(
        &drill,
        vec![
            team(1, "alpha", Role::Both, "10.61.1.0/24"),
            team(2, "bravo", Role::Both, "10.61.2.0/24"),
            team(3, "charlie", Role::Defender, "10.61.3.0/24"),
            team(4, "red", Role::Attacker, "10.61.4.0/24"),
        ],
        vec![service(1, "web", ctx.clone()), service(2, "api", ctx)],
    );
    let orch = Orchestrator::new(engine.clone(), settings("10.251.0.0/16"));
    let plan = orch.plan(&s).unwrap();
    let report = orch.up(&s).await.unwrap();
    // 3 defending teams x (web + its db + api); the attacker-only team gets nothing.
    assert_eq!(report.created.len(), 9, "{report:?}");
    assert_eq!(report.networks_created.len(), 6, "3 game + 3 private networks: {report:?}");
    assert!(plan.instances.iter().all(|i| i.team != "red"));

    // Addresses as documented: service id S at host S+1 of the team's network.
    for (t, net) in [("alpha", 1u8), ("bravo", 2), ("charlie", 3)] {
        for (svc, id) in [("web", 1u8), ("api", 2)] {
            let want = Ipv4Addr::new(10, 61, net, id + 1);
            let spec = plan.instance(t, svc).unwrap();
            let state = engine.inspect(&spec.name).await.unwrap();
            assert!(state.running, "{} not running: {}", spec.name, state.status);
            assert_eq!(state.addresses.get(&format!("gf-{drill}-{t}")), Some(&want), "{}", spec.name);
            assert_eq!(state.labels.get(labels::TEAM).map(String::as_str), Some(t));
            assert_eq!(state.labels.get(labels::SERVICE).map(String::as_str), Some(svc));
            // Reachable from the host, running as nobody.
            assert_eq!(blocking(move || ask(want, "PING", PATIENCE)).await, "PONG 65534");
        }
    }
    let a_web = Ipv4Addr::new(10, 61, 1, 2);
    let b_web = Ipv4Addr::new(10, 61, 2, 2);
    let a_db = plan
        .instances
        .iter()
        .find(|i| i.team == "alpha" && i.component == "db")
        .unwrap()
        .private
        .as_ref()
        .unwrap()
        .address;
    let b_db = plan
        .instances
        .iter()
        .find(|i| i.team == "bravo" && i.component == "db")
        .unwrap()
        .private
        .as_ref()
        .unwrap()
        .address;
    assert_eq!(
        a_db,
        Ipv4Addr::new(10, 251, 1, 19),
        "alpha (id 1), web (id 1): private /28 #17 = 10.251.1.16/28, db at its host 3"
    );
    // The db is on its private network only: it has no game address.
    let db_state = engine.inspect(&format!("gf-{drill}-bravo-web-db")).await.unwrap();
    assert_eq!(db_state.addresses.len(), 1, "{:?}", db_state.addresses);
    assert_eq!(db_state.addresses.get(&format!("gf-{drill}-bravo-web-private")), Some(&b_db));

    // Isolation, tried from inside alpha's web container.
    let asks = move |cmd: String| blocking(move || ask(a_web, &cmd, PATIENCE));
    assert_eq!(asks(format!("CONNECT {a_db}:8080")).await, "OPEN", "the app must reach its own database");
    let fw = Firewall::new(&drill);
    let (in0, fwd0) = fw.rejected().await.unwrap();
    assert!(asks(format!("CONNECT {b_db}:8080")).await.starts_with("FAIL"), "alpha reached bravo's private network");
    assert!(asks(format!("CONNECT {b_web}:8080")).await.starts_with("FAIL"), "alpha reached bravo's service");
    let platform = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = platform.local_addr().unwrap().port();
    let gateway = Ipv4Addr::new(10, 61, 1, 1);
    assert!(std::net::TcpStream::connect((gateway, port)).is_ok(), "the platform port must be open to the host itself");
    assert!(
        asks(format!("CONNECT {gateway}:{port}")).await.starts_with("FAIL"),
        "a team container reached the platform's port"
    );
    assert!(
        asks("UNIX /var/run/docker.sock".into()).await.starts_with("FAIL"),
        "the Docker socket is inside a team container"
    );
    // "Outside": a container on Docker's default bridge, which has a NATed way out.
    let outside = format!("gf-{drill}-outside");
    let d = engine.docker();
    d.create_container(
        Some(CreateContainerOptionsBuilder::new().name(&outside).build()),
        ContainerCreateBody {
            image: Some(plan.instance("alpha", "web").unwrap().image.clone()),
            labels: Some([(labels::DRILL.to_owned(), drill.clone())].into()),
            host_config: Some(HostConfig { network_mode: Some("bridge".into()), ..Default::default() }),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    d.start_container(&outside, None).await.unwrap();
    let outside_ip: Ipv4Addr =
        d.inspect_container(&outside, None).await.unwrap().network_settings.unwrap().networks.unwrap()["bridge"]
            .ip_address
            .clone()
            .unwrap()
            .parse()
            .unwrap();
    assert_eq!(blocking(move || ask(outside_ip, "PING", PATIENCE)).await, "PONG 65534", "the outside stand-in is up");
    assert!(
        asks(format!("CONNECT {outside_ip}:8080")).await.starts_with("FAIL"),
        "a team container reached the outside"
    );
    let (in1, fwd1) = fw.rejected().await.unwrap();
    assert!(in1 > in0, "the host rules rejected nothing ({in0} -> {in1})");
    assert!(fwd1 > fwd0, "the forward rules rejected nothing ({fwd0} -> {fwd1})");

    // Hardening as the engine reports it, on every container.
    for spec in &plan.instances {
        let raw: Value = engine.inspect(&spec.name).await.unwrap().raw;
        let hc = &raw["HostConfig"];
        assert_eq!(hc["CapDrop"], serde_json::json!(["ALL"]), "{}", spec.name);
        assert!(hc["CapAdd"].is_null() || hc["CapAdd"] == serde_json::json!([]), "{}: {}", spec.name, hc["CapAdd"]);
        assert!(
            hc["SecurityOpt"].as_array().unwrap().iter().any(|o| o.as_str().unwrap().starts_with("no-new-privileges")),
            "{}",
            spec.name
        );
        assert_eq!(hc["ReadonlyRootfs"], true, "{}", spec.name);
        assert!(hc["Tmpfs"]["/tmp"].is_string(), "{}", spec.name);
        assert_eq!(hc["Privileged"], false, "{}", spec.name);
        assert_eq!(hc["Memory"], 64 << 20, "{}", spec.name);
        assert_eq!(hc["NanoCpus"], 250_000_000, "{}", spec.name);
        assert_eq!(hc["PidsLimit"], 64, "{}", spec.name);
        assert!(hc["Binds"].is_null() || hc["Binds"] == serde_json::json!([]), "{}", spec.name);
        assert!(raw["Mounts"].as_array().is_none_or(|m| m.iter().all(|m| m["Type"] != "bind")), "{}", spec.name);
        assert_eq!(raw["Config"]["User"], "65534:65534", "{}", spec.name);
    }
    let logs = engine.logs(&plan.instance("alpha", "web").unwrap().name, 10).await.unwrap();
    assert!(logs.contains("listening on port 8080"), "{logs}");

    // Reset: a fresh container from the image, alpha's data gone, bravo's untouched.
    assert_eq!(blocking(move || ask(a_web, "PUT alpha-secret", PATIENCE)).await, "OK");
    assert_eq!(blocking(move || ask(b_web, "PUT bravo-secret", PATIENCE)).await, "OK");
    assert_eq!(blocking(move || ask(a_web, "GET", PATIENCE)).await, "alpha-secret");
    let before = engine.inspect(&plan.instance("alpha", "web").unwrap().name).await.unwrap().id;
    let reset = orch.reset(&s, "alpha", "web").await.unwrap();
    assert_eq!(reset.len(), 2, "app and database: {reset:?}");
    let after = engine.inspect(&plan.instance("alpha", "web").unwrap().name).await.unwrap();
    assert_ne!(before, after.id, "reset kept the old container");
    assert!(after.running);
    assert_eq!(blocking(move || ask(a_web, "GET", PATIENCE)).await, "EMPTY");
    assert_eq!(blocking(move || ask(b_web, "GET", PATIENCE)).await, "bravo-secret");
    assert_eq!(
        blocking(move || ask(a_web, &format!("CONNECT {a_db}:8080"), PATIENCE)).await,
        "OPEN",
        "reset app rejoined its private network"
    );

    // Teardown: nothing labelled with the drill is left, firewall included.
    let t = orch.down(&drill).await.unwrap();
    assert_eq!(t.containers, 10, "9 instances + the outside stand-in: {t:?}");
    assert_eq!(t.networks, 6);
    assert!(t.firewall);
    assert_eq!(t.images, 3, "the web, web-db and api tags built for the drill: {t:?}");
    assert_eq!(remaining(&engine, &drill).await, (0, 0, 0));
    let images = d
        .list_images(Some(ListImagesOptionsBuilder::new().filters(&labels::drill_filter(&drill)).build()))
        .await
        .unwrap();
    assert!(images.is_empty(), "{images:?}");
    assert!(!fw.installed().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_is_idempotent_after_a_kill_and_follows_changes() {
    let Some(engine) = engine(Backend::Docker) else { return };
    let drill = drill("rec");
    let _guard = DrillGuard { drill: drill.clone(), backend: Backend::Docker };
    let ctx = ImageSource::Build(service_context());
    let mut s = scenario(
        &drill,
        vec![
            team(1, "alpha", Role::Both, "10.62.1.0/24"),
            team(2, "bravo", Role::Both, "10.62.2.0/24"),
            team(3, "charlie", Role::Both, "10.62.3.0/24"),
        ],
        vec![service(1, "web", ctx.clone()), service(2, "api", ctx)],
    );
    let orch = Orchestrator::new(engine.clone(), Settings { concurrency: 2, ..settings("10.252.0.0/16") });
    let plan = orch.plan(&s).unwrap();
    let expected: BTreeSet<String> = plan.instances.iter().map(|i| i.name.clone()).collect();
    assert_eq!(expected.len(), 9);
    orch.images(&plan).await.unwrap();

    // Kill the orchestrator part-way through a bring-up.
    let task = {
        let (orch, s) = (orch.clone(), s.clone());
        tokio::spawn(async move { orch.up(&s).await })
    };
    let deadline = std::time::Instant::now() + PATIENCE;
    while engine.list(&drill).await.unwrap().len() < 2 {
        assert!(std::time::Instant::now() < deadline, "bring-up never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    task.abort();
    let _ = task.await;
    let partial = engine.list(&drill).await.unwrap().len();

    let report = orch.up(&s).await.unwrap();
    let names =
        |list: Vec<gongfang_docker::Existing>| list.into_iter().map(|e| (e.name, e.running)).collect::<Vec<_>>();
    let now = names(engine.list(&drill).await.unwrap());
    assert_eq!(now.len(), 9, "duplicates or missing after a killed run (had {partial}): {now:?}");
    assert_eq!(now.iter().map(|(n, _)| n.clone()).collect::<BTreeSet<_>>(), expected);
    assert!(now.iter().all(|(_, running)| *running), "{now:?}");
    assert_eq!(report.adopted.len() + report.created.len() + report.recreated.len(), 9, "{report:?}");
    for (t, net) in [("alpha", 1u8), ("bravo", 2), ("charlie", 3)] {
        for id in [2u8, 3] {
            let ip = Ipv4Addr::new(10, 62, net, id);
            assert!(blocking(move || ask(ip, "PING", PATIENCE)).await.starts_with("PONG"), "{t} .{id}");
        }
    }

    // Running it again changes nothing.
    let again = orch.up(&s).await.unwrap();
    assert_eq!(again.adopted.len(), 9, "{again:?}");
    assert!(again.created.is_empty() && again.recreated.is_empty() && again.removed.is_empty(), "{again:?}");
    assert!(again.networks_created.is_empty() && again.networks_removed.is_empty(), "{again:?}");

    // A stopped container is started again, not replaced.
    let api_a = plan.instance("alpha", "api").unwrap().name.clone();
    let id_before = engine.inspect(&api_a).await.unwrap().id;
    engine.stop(&api_a).await.unwrap();
    assert!(!engine.inspect(&api_a).await.unwrap().running);
    orch.up(&s).await.unwrap();
    let st = engine.inspect(&api_a).await.unwrap();
    assert!(st.running && st.id == id_before);

    // A changed limit makes exactly that service's containers stale.
    s.services[1].limits.memory_bytes = 96 << 20;
    let changed = orch.up(&s).await.unwrap();
    let mut recreated = changed.recreated.clone();
    recreated.sort();
    let mut want: Vec<String> = ["alpha", "bravo", "charlie"].iter().map(|t| format!("gf-{drill}-{t}-api")).collect();
    want.sort();
    assert_eq!(recreated, want, "{changed:?}");
    assert_eq!(changed.adopted.len(), 6);
    assert_eq!(engine.inspect(&api_a).await.unwrap().raw["HostConfig"]["Memory"], 96 << 20);

    // A service gone from the scenario is removed, and so is its team's private network.
    s.services.remove(0);
    let shrunk = orch.up(&s).await.unwrap();
    assert_eq!(shrunk.removed.len(), 6, "web and db of 3 teams: {shrunk:?}");
    assert_eq!(shrunk.networks_removed.len(), 3, "{shrunk:?}");
    assert_eq!(engine.list(&drill).await.unwrap().len(), 3);

    orch.down(&drill).await.unwrap();
    assert_eq!(remaining(&engine, &drill).await, (0, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_image_is_a_clear_error_and_creates_nothing() {
    let Some(engine) = engine(Backend::Docker) else { return };
    let drill = drill("img");
    let _guard = DrillGuard { drill: drill.clone(), backend: Backend::Docker };
    let s = scenario(
        &drill,
        vec![team(1, "alpha", Role::Both, "10.65.1.0/24")],
        vec![service(1, "web", ImageSource::Image("gongfang/no-such-image:never".into()))],
    );
    let orch = Orchestrator::new(
        engine.clone(),
        Settings { private_pool: Ipv4Net::parse("10.253.0.0/16").unwrap(), ..Settings::default() },
    );
    let err = orch.up(&s).await.unwrap_err();
    assert!(matches!(err, gongfang_docker::Error::ImageMissing(ref n) if n == "gongfang/no-such-image:never"), "{err}");
    assert_eq!(remaining(&engine, &drill).await, (0, 0, 0));
}
