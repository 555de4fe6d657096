//! `gongfang down`: removes every container (or Swarm service), network and volume labelled
//! with a drill, the drill's host firewall rules (IPv4 and IPv6), and a WireGuard gateway a
//! killed platform left behind. Works from the scenario file or from the drill's slug alone,
//! so a crashed or half-built drill can always be cleaned up.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use gongfang_docker::{Backend, Engine, Orchestrator, Settings};

use crate::scenario_file;

#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false, id = "which")]
pub struct Args {
    /// The drill's scenario file; its `drill.slug` names what to remove.
    #[arg(long, group = "which")]
    pub scenario: Option<PathBuf>,
    /// The drill's slug, when the scenario file is gone or broken.
    #[arg(long, group = "which")]
    pub drill: Option<String>,
    /// `docker` (containers) or `swarm` (services).
    #[arg(long, default_value = "docker")]
    pub backend: Backend,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let drill = match (&args.drill, &args.scenario) {
        (Some(slug), _) => slug.clone(),
        (None, Some(path)) => scenario_file::load(path)?.drill.slug,
        (None, None) => unreachable!("clap requires one of --scenario and --drill"),
    };
    // First, so it goes even when the container engine cannot be reached.
    if crate::vpn::remove_leftover_gateway(&drill)? {
        println!("drill {drill}: removed the WireGuard gateway left running");
    }
    let backend = args.backend;
    let rt =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    let engine = Engine::connect(backend)?;
    let orch = Orchestrator::new(engine, Settings { backend, ..Settings::default() });
    let t = rt.block_on(orch.down(&drill))?;
    println!(
        "drill {drill}: removed {} {}, {} networks, {} volumes, {} images{}",
        t.containers,
        if backend == Backend::Swarm { "services" } else { "containers" },
        t.networks,
        t.volumes,
        t.images,
        if t.firewall { ", firewall rules" } else { "" }
    );
    Ok(ExitCode::SUCCESS)
}
