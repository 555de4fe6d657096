//! The plain Docker backend: one container per instance, bridge networks with fixed subnets
//! and fixed addresses, built and run through bollard.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::Path;

use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, ContainerSummaryStateEnum, EndpointIpamConfig, EndpointSettings, Ipam, IpamConfig,
    NetworkConnectRequest, NetworkCreateRequest, NetworkingConfig,
};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateContainerOptionsBuilder, ListContainersOptionsBuilder, ListImagesOptionsBuilder,
    ListNetworksOptionsBuilder, ListVolumesOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    RemoveImageOptionsBuilder, RemoveVolumeOptionsBuilder, RestartContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use futures::StreamExt;
use tracing::{debug, info};

use crate::plan::{InstanceSpec, NetworkSpec};
use crate::runtime::{Existing, InstanceState, Runtime};
use crate::{Error, Result, is_not_found, labels};

/// Seconds a service gets to stop before it is killed.
const STOP_GRACE: i32 = 5;

/// Containers on one Docker engine.
#[derive(Debug, Clone)]
pub struct DockerRuntime {
    docker: Docker,
}

impl DockerRuntime {
    pub fn new(docker: Docker) -> Self {
        DockerRuntime { docker }
    }

    pub fn docker(&self) -> &Docker {
        &self.docker
    }
}

fn status_is(e: &bollard::errors::Error, code: u16) -> bool {
    matches!(e, bollard::errors::Error::DockerResponseServerError { status_code, .. } if *status_code == code)
}

pub(crate) async fn build_image(
    docker: &Docker,
    tag: &str,
    context: &Path,
    labels: HashMap<String, String>,
) -> Result<String> {
    let tar = crate::image::tar_context(context)?;
    let options = BuildImageOptionsBuilder::new().t(tag).rm(true).forcerm(true).labels(&labels).build();
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(tar.into())));
    let mut tail = Vec::new();
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| Error::Build { tag: tag.to_owned(), message: e.to_string() })?;
        if let Some(detail) = info.error_detail {
            return Err(Error::Build { tag: tag.to_owned(), message: detail.message.unwrap_or_default() });
        }
        if let Some(line) = info.stream.filter(|l| !l.trim().is_empty()) {
            debug!(tag, line = line.trim_end(), "build");
            tail.push(line);
        }
    }
    let id = image_id(docker, tag).await?.ok_or_else(|| Error::Build {
        tag: tag.to_owned(),
        message: format!("no image after the build: {}", tail.concat()),
    })?;
    info!(tag, id, "image built");
    Ok(id)
}

pub(crate) async fn image_id(docker: &Docker, name: &str) -> Result<Option<String>> {
    match docker.inspect_image(name).await {
        Ok(img) => Ok(img.id),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(Error::docker(format!("inspect image {name}"))(e)),
    }
}

pub(crate) async fn remove_volumes(docker: &Docker, drill: &str) -> Result<usize> {
    let list = docker
        .list_volumes(Some(ListVolumesOptionsBuilder::new().filters(&labels::drill_filter(drill)).build()))
        .await
        .map_err(Error::docker("list volumes"))?;
    let mut n = 0;
    for v in list.volumes.unwrap_or_default() {
        match docker.remove_volume(&v.name, Some(RemoveVolumeOptionsBuilder::new().force(true).build())).await {
            Ok(()) => n += 1,
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(Error::docker(format!("remove volume {}", v.name))(e)),
        }
    }
    Ok(n)
}

pub(crate) async fn remove_volume(docker: &Docker, name: &str) -> Result<()> {
    match docker.remove_volume(name, Some(RemoveVolumeOptionsBuilder::new().force(true).build())).await {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(Error::docker(format!("remove volume {name}"))(e)),
    }
}

pub(crate) async fn remove_images(docker: &Docker, drill: &str) -> Result<usize> {
    let list = docker
        .list_images(Some(ListImagesOptionsBuilder::new().filters(&labels::drill_filter(drill)).build()))
        .await
        .map_err(Error::docker("list images"))?;
    let mut n = 0;
    for img in list {
        // By tag first: one image id may carry the tags of several services.
        let names = if img.repo_tags.is_empty() { vec![img.id.clone()] } else { img.repo_tags.clone() };
        for name in names {
            match docker.remove_image(&name, Some(RemoveImageOptionsBuilder::new().force(true).build()), None).await {
                Ok(_) => n += 1,
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(Error::docker(format!("remove image {name}"))(e)),
            }
        }
    }
    Ok(n)
}

pub(crate) async fn list_networks(docker: &Docker, drill: &str) -> Result<Vec<Existing>> {
    let nets = docker
        .list_networks(Some(ListNetworksOptionsBuilder::new().filters(&labels::drill_filter(drill)).build()))
        .await
        .map_err(Error::docker("list networks"))?;
    Ok(nets
        .into_iter()
        .map(|n| Existing {
            name: n.name.unwrap_or_default(),
            id: n.id.unwrap_or_default(),
            labels: n.labels.unwrap_or_default(),
            running: true,
            networks: None,
        })
        .collect())
}

pub(crate) async fn remove_network(docker: &Docker, name: &str) -> Result<()> {
    match docker.remove_network(name).await {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(Error::docker(format!("remove network {name}"))(e)),
    }
}

fn endpoint(att: &crate::plan::Attachment) -> EndpointSettings {
    EndpointSettings {
        ipam_config: Some(EndpointIpamConfig { ipv4_address: Some(att.address.to_string()), ..Default::default() }),
        aliases: Some(att.aliases.clone()),
        ..Default::default()
    }
}

/// The engine's request for one bridge network of the plan (pure, for tests).
fn network_request(drill: &str, spec: &NetworkSpec) -> NetworkCreateRequest {
    let game = !spec.internal();
    let options = HashMap::from([
        ("com.docker.network.bridge.name".to_owned(), spec.bridge.clone()),
        // Game network: a team's services do not talk to each other; they are reached from
        // the host. Private network: the app must reach its sidecars.
        ("com.docker.network.bridge.enable_icc".to_owned(), (!game).to_string()),
        // Nothing is NATed out: team containers have no way to the outside world.
        ("com.docker.network.bridge.enable_ip_masquerade".to_owned(), "false".to_owned()),
    ]);
    NetworkCreateRequest {
        name: spec.name.clone(),
        driver: Some("bridge".to_owned()),
        internal: Some(spec.internal()),
        // Never IPv6: the plan and the firewall speak IPv4 addresses only (the IPv6 rules
        // close what link-local addresses would open).
        enable_ipv6: Some(false),
        attachable: Some(false),
        ipam: Some(Ipam {
            driver: Some("default".to_owned()),
            config: Some(vec![IpamConfig {
                subnet: Some(spec.subnet.to_string()),
                gateway: Some(spec.gateway.to_string()),
                ..Default::default()
            }]),
            options: None,
        }),
        options: Some(options),
        labels: Some(spec.labels(drill)),
        ..Default::default()
    }
}

impl Runtime for DockerRuntime {
    async fn build_image(&self, tag: &str, context: &Path, labels: HashMap<String, String>) -> Result<String> {
        build_image(&self.docker, tag, context, labels).await
    }

    async fn image_id(&self, name: &str) -> Result<Option<String>> {
        image_id(&self.docker, name).await
    }

    async fn create_network(&self, drill: &str, spec: &NetworkSpec) -> Result<()> {
        let request = network_request(drill, spec);
        match self.docker.create_network(request).await {
            Ok(_) => {
                info!(network = spec.name, subnet = %spec.subnet, bridge = spec.bridge, "network created");
                Ok(())
            }
            Err(e) if status_is(&e, 409) => Ok(()),
            Err(e) => Err(Error::docker(format!("create network {}", spec.name))(e)),
        }
    }

    async fn list_networks(&self, drill: &str) -> Result<Vec<Existing>> {
        list_networks(&self.docker, drill).await
    }

    async fn remove_network(&self, name: &str) -> Result<()> {
        remove_network(&self.docker, name).await
    }

    async fn create(&self, drill: &str, spec: &InstanceSpec, image_id: &str) -> Result<()> {
        let mut attachments = spec.attachments();
        let first = attachments.next().ok_or_else(|| Error::Plan(format!("{} is on no network", spec.name)))?;
        let mut host_config = spec.hardening.host_config();
        host_config.network_mode = Some(first.network.clone());
        host_config.mounts = Some(spec.volume_mounts(drill));
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            user: Some(spec.hardening.user.clone()),
            hostname: Some(spec.component.clone().replace("main", &spec.service)),
            env: Some(spec.env.clone()),
            labels: Some(spec.labels(drill, image_id)),
            host_config: Some(host_config),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(first.network.clone(), endpoint(first))])),
            }),
            ..Default::default()
        };
        self.docker
            .create_container(Some(CreateContainerOptionsBuilder::new().name(&spec.name).build()), body)
            .await
            .map_err(Error::docker(format!("create container {}", spec.name)))?;
        // The engine takes one network at creation (API 1.41); the rest are joined before start.
        for att in attachments {
            self.docker
                .connect_network(
                    &att.network,
                    NetworkConnectRequest { container: spec.name.clone(), endpoint_config: Some(endpoint(att)) },
                )
                .await
                .map_err(Error::docker(format!("connect {} to {}", spec.name, att.network)))?;
        }
        debug!(container = spec.name, "created");
        Ok(())
    }

    async fn list(&self, drill: &str) -> Result<Vec<Existing>> {
        let options = ListContainersOptionsBuilder::new().all(true).filters(&labels::drill_filter(drill)).build();
        let list = self.docker.list_containers(Some(options)).await.map_err(Error::docker("list containers"))?;
        Ok(list
            .into_iter()
            .map(|c| Existing {
                name: c
                    .names
                    .unwrap_or_default()
                    .first()
                    .map(|n| n.trim_start_matches('/').to_owned())
                    .unwrap_or_default(),
                id: c.id.unwrap_or_default(),
                labels: c.labels.unwrap_or_default(),
                running: matches!(
                    c.state,
                    Some(ContainerSummaryStateEnum::RUNNING) | Some(ContainerSummaryStateEnum::RESTARTING)
                ),
                networks: c.network_settings.and_then(|n| n.networks).map(|n| n.into_keys().collect()),
            })
            .collect())
    }

    async fn start(&self, name: &str) -> Result<()> {
        match self.docker.start_container(name, None).await {
            Ok(()) => Ok(()),
            Err(e) if status_is(&e, 304) => Ok(()),
            Err(e) if is_not_found(&e) => Err(Error::NotFound(name.to_owned())),
            Err(e) => Err(Error::docker(format!("start {name}"))(e)),
        }
    }

    async fn stop(&self, name: &str) -> Result<()> {
        match self.docker.stop_container(name, Some(StopContainerOptionsBuilder::new().t(STOP_GRACE).build())).await {
            Ok(()) => Ok(()),
            Err(e) if status_is(&e, 304) => Ok(()),
            Err(e) if is_not_found(&e) => Err(Error::NotFound(name.to_owned())),
            Err(e) => Err(Error::docker(format!("stop {name}"))(e)),
        }
    }

    async fn restart(&self, name: &str) -> Result<()> {
        match self
            .docker
            .restart_container(name, Some(RestartContainerOptionsBuilder::new().t(STOP_GRACE).build()))
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Err(Error::NotFound(name.to_owned())),
            Err(e) => Err(Error::docker(format!("restart {name}"))(e)),
        }
    }

    async fn inspect(&self, name: &str) -> Result<InstanceState> {
        let c = match self.docker.inspect_container(name, None).await {
            Ok(c) => c,
            Err(e) if is_not_found(&e) => return Err(Error::NotFound(name.to_owned())),
            Err(e) => return Err(Error::docker(format!("inspect {name}"))(e)),
        };
        let raw = serde_json::to_value(&c).unwrap_or_default();
        let state = c.state.unwrap_or_default();
        let addresses = c
            .network_settings
            .and_then(|n| n.networks)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(net, ep)| ep.ip_address.and_then(|ip| ip.parse::<Ipv4Addr>().ok()).map(|ip| (net, ip)))
            .collect();
        Ok(InstanceState {
            name: c.name.unwrap_or_default().trim_start_matches('/').to_owned(),
            id: c.id.unwrap_or_default(),
            running: state.running.unwrap_or(false),
            status: state.status.map(|s| s.to_string()).unwrap_or_default(),
            addresses,
            labels: c.config.and_then(|c| c.labels).unwrap_or_default(),
            raw,
        })
    }

    async fn logs(&self, name: &str, tail: usize) -> Result<String> {
        let options = LogsOptionsBuilder::new().stdout(true).stderr(true).tail(&tail.to_string()).build();
        let mut stream = self.docker.logs(name, Some(options));
        let mut out = String::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(c) => out.push_str(&c.to_string()),
                Err(e) if is_not_found(&e) => return Err(Error::NotFound(name.to_owned())),
                Err(e) => return Err(Error::docker(format!("logs of {name}"))(e)),
            }
        }
        Ok(out)
    }

    async fn remove(&self, name: &str) -> Result<()> {
        match self
            .docker
            .remove_container(name, Some(RemoveContainerOptionsBuilder::new().force(true).v(true).build()))
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            // Already being removed by an earlier, interrupted run.
            Err(e) if status_is(&e, 409) => Ok(()),
            Err(e) => Err(Error::docker(format!("remove {name}"))(e)),
        }
    }

    async fn remove_volumes(&self, drill: &str) -> Result<usize> {
        remove_volumes(&self.docker, drill).await
    }

    async fn remove_volume(&self, name: &str) -> Result<()> {
        remove_volume(&self.docker, name).await
    }

    async fn remove_images(&self, drill: &str) -> Result<usize> {
        remove_images(&self.docker, drill).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{NetworkKind, NetworkSpec};
    use gongfang_core::scenario::Ipv4Net;

    fn spec(kind: NetworkKind) -> NetworkSpec {
        let subnet = Ipv4Net::parse("10.60.1.0/24").unwrap();
        NetworkSpec {
            name: "gf-d-a".into(),
            team: "a".into(),
            kind,
            subnet,
            gateway: subnet.host(1).unwrap(),
            bridge: "gfabcdeft1".into(),
        }
    }

    #[test]
    fn networks_are_ipv4_only_and_not_masqueraded() {
        for kind in [NetworkKind::Game, NetworkKind::Private { service: "web".into() }] {
            let internal = kind != NetworkKind::Game;
            let r = network_request("d", &spec(kind));
            assert_eq!(r.enable_ipv6, Some(false), "a team network must never get IPv6");
            assert_eq!(r.internal, Some(internal));
            let options = r.options.unwrap();
            assert_eq!(options["com.docker.network.bridge.enable_ip_masquerade"], "false");
            assert_eq!(options["com.docker.network.bridge.name"], "gfabcdeft1");
            let ipam = r.ipam.unwrap().config.unwrap();
            assert_eq!(ipam.len(), 1, "one IPv4 subnet, no IPv6 one");
            assert_eq!(ipam[0].subnet.as_deref(), Some("10.60.1.0/24"));
        }
    }
}
