//! The Swarm backend on a single-node swarm made for the test (and left afterwards): the same
//! scenario as Swarm services on overlay networks, hardened, spread, reconciled, reset and
//! torn down. Runs in its own test binary so the swarm never overlaps the bridge tests.

mod common;

use std::time::{Duration, Instant};

use bollard::models::SwarmInitRequest;
use bollard::query_parameters::{LeaveSwarmOptionsBuilder, ListServicesOptionsBuilder, ListTasksOptionsBuilder};
use common::{DrillGuard, drill, engine, scenario, service, service_context, team};
use gongfang_core::scenario::{ImageSource, Ipv4Net, Role};
use gongfang_docker::{Backend, Orchestrator, Runtime, Settings, labels};

/// Leaves the swarm on drop if this test created it.
struct SwarmGuard {
    created: bool,
    gwbridge_existed: bool,
}

impl Drop for SwarmGuard {
    fn drop(&mut self) {
        if !self.created {
            return;
        }
        let remove_gwbridge = !self.gwbridge_existed;
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let d = bollard::Docker::connect_with_defaults().unwrap();
                if let Err(e) = d.leave_swarm(Some(LeaveSwarmOptionsBuilder::new().force(true).build())).await {
                    eprintln!("leaving the test swarm failed: {e}");
                }
                if remove_gwbridge {
                    // Swarm creates this bridge and leaves it behind.
                    let _ = d.remove_network("docker_gwbridge").await;
                }
            })
        })
        .join();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_node_swarm_runs_the_scenario_as_services() {
    let Some(engine) = engine(Backend::Swarm) else { return };
    let d = engine.docker().clone();
    let gwbridge_existed = d.inspect_network("docker_gwbridge", None).await.is_ok();
    let created = match d.inspect_swarm().await {
        Ok(_) => false,
        Err(_) => match d
            .init_swarm(SwarmInitRequest {
                listen_addr: Some("127.0.0.1:2377".into()),
                advertise_addr: Some("127.0.0.1".into()),
                ..Default::default()
            })
            .await
        {
            Ok(_) => true,
            Err(e) => {
                let required = std::env::var("GONGFANG_REQUIRE_SWARM").is_ok_and(|v| v == "1");
                assert!(!required, "GONGFANG_REQUIRE_SWARM=1 but the engine refused `swarm init`: {e}");
                eprintln!("SKIPPED: the engine refused `swarm init`: {e}");
                return;
            }
        },
    };
    let _swarm = SwarmGuard { created, gwbridge_existed };
    let drill = drill("swarm");
    let _guard = DrillGuard { drill: drill.clone(), backend: Backend::Swarm };

    let ctx = ImageSource::Build(service_context());
    let s = scenario(
        &drill,
        vec![team(1, "alpha", Role::Both, "10.63.1.0/24"), team(2, "bravo", Role::Both, "10.63.2.0/24")],
        vec![service(1, "web", ctx)],
    );
    let settings = Settings {
        backend: Backend::Swarm,
        private_pool: Ipv4Net::parse("10.254.0.0/16").unwrap(),
        ..Settings::default()
    };
    let orch = Orchestrator::new(engine.clone(), settings);
    let plan = orch.plan(&s).unwrap();
    let report = orch.up(&s).await.unwrap();
    assert_eq!(report.created.len(), 2, "{report:?}");
    assert_eq!(report.networks_created.len(), 2, "{report:?}");

    // Overlay game networks with the teams' subnets.
    for (t, subnet) in [("alpha", "10.63.1.0/24"), ("bravo", "10.63.2.0/24")] {
        let net = d.inspect_network(&format!("gf-{drill}-{t}"), None).await.unwrap();
        assert_eq!(net.driver.as_deref(), Some("overlay"));
        assert_eq!(net.ipam.unwrap().config.unwrap()[0].subnet.as_deref(), Some(subnet));
    }

    // Every service reaches a running task, with a virtual address in its team's subnet.
    for t in ["alpha", "bravo"] {
        let name = &plan.instance(t, "web").unwrap().name;
        let deadline = Instant::now() + Duration::from_secs(90);
        let state = loop {
            let st = engine.inspect(name).await.unwrap();
            if st.running {
                break st;
            }
            assert!(Instant::now() < deadline, "{name} never ran: {}", st.status);
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        let team_net = s.teams.iter().find(|x| x.slug == t).unwrap().network;
        assert!(state.addresses.values().any(|ip| team_net.contains(*ip)), "{name}: {:?}", state.addresses);
        // The spec carries the hardening and the spread placement.
        let spec = &state.raw["Spec"]["TaskTemplate"];
        let cs = &spec["ContainerSpec"];
        assert_eq!(cs["CapabilityDrop"], serde_json::json!(["ALL"]), "{cs}");
        assert_eq!(cs["ReadOnly"], true);
        assert_eq!(cs["User"], "65534:65534");
        assert_eq!(spec["Resources"]["Limits"]["Pids"], 64);
        assert_eq!(spec["Resources"]["Limits"]["MemoryBytes"], 64 << 20);
        assert_eq!(spec["Placement"]["Preferences"][0]["Spread"]["SpreadDescriptor"], "node.id");
        // And the engine applied it to the task's container.
        let filters = std::collections::HashMap::from([
            ("service".to_owned(), vec![name.clone()]),
            ("desired-state".to_owned(), vec!["running".to_owned()]),
        ]);
        let tasks = d.list_tasks(Some(ListTasksOptionsBuilder::new().filters(&filters).build())).await.unwrap();
        let cid =
            tasks.iter().find_map(|t| t.status.as_ref()?.container_status.as_ref()?.container_id.clone()).unwrap();
        let c = d.inspect_container(&cid, None).await.unwrap();
        let hc = c.host_config.unwrap();
        assert_eq!(hc.cap_drop, Some(vec!["ALL".to_owned()]));
        assert_eq!(hc.readonly_rootfs, Some(true));
        assert_eq!(hc.pids_limit, Some(64));
        assert_eq!(hc.privileged, Some(false));
        assert_eq!(c.config.unwrap().user.as_deref(), Some("65534:65534"));
    }

    // Reconcile again: everything adopted.
    let again = orch.up(&s).await.unwrap();
    assert_eq!(again.adopted.len(), 2, "{again:?}");
    assert!(again.created.is_empty() && again.recreated.is_empty(), "{again:?}");

    // Reset replaces the service.
    let name = plan.instance("alpha", "web").unwrap().name.clone();
    let before = engine.inspect(&name).await.unwrap().id;
    orch.reset(&s, "alpha", "web").await.unwrap();
    assert_ne!(engine.inspect(&name).await.unwrap().id, before);

    let t = orch.down(&drill).await.unwrap();
    assert_eq!((t.containers, t.networks), (2, 2), "{t:?}");
    let left = d
        .list_services(Some(ListServicesOptionsBuilder::new().filters(&labels::drill_filter(&drill)).build()))
        .await
        .unwrap();
    assert!(left.is_empty());
    assert!(engine.list_networks(&drill).await.unwrap().is_empty());
}
