//! Bring-up of 50 teams x 3 services: the orchestrator (concurrent, over the engine's API)
//! beside sequential `docker run` of the same containers (same image, same hardening flags,
//! same networks and addresses), each timed from nothing to every service accepting TCP
//! connections on its address. Prints both times and the ratio, and cleans up by label.
//!
//! Run: `cargo bench -p gongfang-docker --bench bringup` (env `BRINGUP_TEAMS` to change 50).

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{scenario, service, service_context, team};
use gongfang_core::scenario::{ImageSource, Ipv4Net, Role};
use gongfang_docker::{Backend, Engine, Orchestrator, Settings, labels};

/// Waits until every address accepts a connection on 8080.
async fn all_accepting(addresses: &[Ipv4Addr], limit: Duration) -> Duration {
    let start = Instant::now();
    let mut pending: Vec<Ipv4Addr> = addresses.to_vec();
    while !pending.is_empty() {
        assert!(
            start.elapsed() < limit,
            "{} services never came up: {:?}",
            pending.len(),
            &pending[..pending.len().min(5)]
        );
        let checks = pending.iter().map(|ip| async move {
            let ok = tokio::time::timeout(
                Duration::from_millis(300),
                tokio::net::TcpStream::connect(SocketAddr::from((*ip, 8080))),
            )
            .await
            .is_ok_and(|r| r.is_ok());
            (*ip, ok)
        });
        let results = futures::future::join_all(checks).await;
        pending = results.into_iter().filter(|(_, ok)| !ok).map(|(ip, _)| ip).collect();
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    start.elapsed()
}

fn docker(args: &[String]) {
    let out = Command::new("docker").args(args).output().expect("the docker CLI runs");
    assert!(out.status.success(), "docker {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

fn main() {
    if common::engine(Backend::Docker).is_none() {
        return;
    }
    let teams: u16 = std::env::var("BRINGUP_TEAMS").ok().and_then(|v| v.parse().ok()).unwrap_or(50);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let drill = format!("bench-{}", std::process::id());
    let baseline_drill = format!("{drill}-run");
    let ctx = ImageSource::Build(service_context());
    let s = scenario(
        &drill,
        (1..=teams).map(|i| team(i, &format!("team{i}"), Role::Both, &format!("10.64.{i}.0/24"))).collect(),
        vec![service(1, "web", ctx.clone()), service(2, "api", ctx.clone()), service(3, "store", ctx)],
    );
    let engine = Engine::connect(Backend::Docker).unwrap();
    let settings = Settings {
        private_pool: Ipv4Net::parse("10.255.0.0/16").unwrap(),
        services: BTreeMap::new(),
        ..Settings::default()
    };
    let orch = Orchestrator::new(engine, settings);
    let plan = orch.plan(&s).unwrap();
    let addresses: Vec<Ipv4Addr> = plan.instances.iter().filter_map(|i| i.game.as_ref().map(|g| g.address)).collect();
    println!("bring-up of {teams} teams x 3 services = {} containers", addresses.len());

    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async {
            let images = orch.images(&plan).await.unwrap();

            // 1. Sequential `docker network create` + `docker run` of the same containers. First,
            //    because the orchestrator's teardown also removes the images built for the drill.
            let label = format!("{}={baseline_drill}", labels::DRILL);
            let t = Instant::now();
            for net in &plan.networks {
                docker(&[
                    "network".into(), "create".into(), "--label".into(), label.clone(),
                    "--subnet".into(), net.subnet.to_string(), "--gateway".into(), net.gateway.to_string(),
                    "-o".into(), format!("com.docker.network.bridge.name={}", net.bridge),
                    "-o".into(), "com.docker.network.bridge.enable_icc=false".into(),
                    "-o".into(), "com.docker.network.bridge.enable_ip_masquerade=false".into(),
                    net.name.clone(),
                ]);
            }
            for i in &plan.instances {
                let g = i.game.as_ref().unwrap();
                let h = &i.hardening;
                docker(&[
                    "run".into(), "-d".into(), "--name".into(), i.name.clone(), "--label".into(), label.clone(),
                    "--network".into(), g.network.clone(), "--ip".into(), g.address.to_string(),
                    "--cap-drop".into(), "ALL".into(), "--security-opt".into(), "no-new-privileges:true".into(),
                    "--read-only".into(), "--tmpfs".into(), "/tmp:rw,nosuid,nodev,noexec,size=16m".into(),
                    "--memory".into(), h.memory_bytes.to_string(), "--memory-swap".into(), h.memory_bytes.to_string(),
                    "--cpus".into(), format!("{}", h.nano_cpus as f64 / 1e9), "--pids-limit".into(), h.pids.to_string(),
                    "--user".into(), h.user.clone(), "--restart".into(), "unless-stopped".into(),
                    i.image.clone(),
                ]);
            }
            let started = t.elapsed();
            all_accepting(&addresses, Duration::from_secs(600)).await;
            let sequential = t.elapsed();
            orch.down(&baseline_drill).await.unwrap();
            println!("sequential docker run: {:>5.2} s to all accepting ({:.2} s to all started)", sequential.as_secs_f64(), started.as_secs_f64());

            // 2. The orchestrator: networks, firewall, containers created and started 8 at a time.
            let t = Instant::now();
            orch.apply(&plan, &images).await.unwrap();
            let created = t.elapsed();
            let ready = all_accepting(&addresses, Duration::from_secs(600)).await;
            let orchestrator = t.elapsed();
            println!("orchestrator:          {:>6.2} s to all accepting ({:.2} s to all started, {:.2} s more until accepting)", orchestrator.as_secs_f64(), created.as_secs_f64(), ready.as_secs_f64());

            println!("ratio (docker run / orchestrator): {:.2}x", sequential.as_secs_f64() / orchestrator.as_secs_f64());
        })
    }));
    // Both drills are labelled: teardown by label cleans either phase, also after a failure.
    for d in [&drill, &baseline_drill] {
        if let Err(e) = rt.block_on(orch.down(d)) {
            eprintln!("cleanup of {d} failed: {e}");
        }
    }
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}
