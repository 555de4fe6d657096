//! The Docker Swarm backend: every instance is a one-replica Swarm service, every network an
//! overlay with the planned subnet, and placement prefers spreading over the nodes. Swarm
//! assigns each service a virtual address from the subnet; fixed per-service addresses are a
//! bridge-only feature of the engine.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::Path;

use bollard::Docker;
use bollard::models::{
    EndpointSpec, EndpointSpecModeEnum, Ipam, IpamConfig, Limit, Mount, MountTmpfsOptions, MountType,
    NetworkAttachmentConfig, NetworkCreateRequest, ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated, TaskSpec,
    TaskSpecContainerSpec, TaskSpecContainerSpecDnsConfig, TaskSpecContainerSpecPrivileges, TaskSpecLogDriver,
    TaskSpecPlacement, TaskSpecPlacementPreferences, TaskSpecPlacementSpread, TaskSpecResources, TaskSpecRestartPolicy,
    TaskSpecRestartPolicyConditionEnum, TaskState,
};
use bollard::query_parameters::{
    ListServicesOptionsBuilder, ListTasksOptionsBuilder, LogsOptionsBuilder, UpdateServiceOptionsBuilder,
};
use futures::StreamExt;
use tracing::info;

use crate::plan::{InstanceSpec, NetworkSpec};
use crate::runtime::{Existing, InstanceState, Runtime};
use crate::{Error, Result, is_not_found, labels};

/// Instances as Swarm services.
#[derive(Debug, Clone)]
pub struct SwarmRuntime {
    docker: Docker,
}

impl SwarmRuntime {
    pub fn new(docker: Docker) -> Self {
        SwarmRuntime { docker }
    }

    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// The service's spec as it would be created.
    pub fn service_spec(drill: &str, spec: &InstanceSpec, image_id: &str, replicas: i64) -> ServiceSpec {
        let h = &spec.hardening;
        let mounts = h
            .tmpfs
            .iter()
            .map(|(path, opts)| Mount {
                target: Some(path.clone()),
                typ: Some(MountType::TMPFS),
                tmpfs_options: Some(MountTmpfsOptions { size_bytes: tmpfs_size(opts), ..Default::default() }),
                ..Default::default()
            })
            .chain(spec.volume_mounts(drill))
            .collect();
        let labels = spec.labels(drill, image_id);
        ServiceSpec {
            name: Some(spec.name.clone()),
            labels: Some(labels.clone()),
            mode: Some(ServiceSpecMode {
                replicated: Some(ServiceSpecModeReplicated { replicas: Some(replicas) }),
                ..Default::default()
            }),
            endpoint_spec: Some(EndpointSpec { mode: Some(EndpointSpecModeEnum::VIP), ..Default::default() }),
            task_template: Some(TaskSpec {
                container_spec: Some(TaskSpecContainerSpec {
                    image: Some(spec.image.clone()),
                    labels: Some(labels),
                    hostname: Some(spec.component.replace("main", &spec.service)),
                    env: Some(spec.env.clone()),
                    user: Some(h.user.clone()),
                    read_only: Some(h.read_only_rootfs),
                    capability_drop: Some(vec!["ALL".to_owned()]),
                    capability_add: (!h.cap_add.is_empty())
                        .then(|| h.cap_add.iter().map(|c| format!("CAP_{c}")).collect()),
                    privileges: Some(TaskSpecContainerSpecPrivileges {
                        no_new_privileges: Some(true),
                        ..Default::default()
                    }),
                    mounts: Some(mounts),
                    // As on plain Docker: names the drill does not know go nowhere.
                    dns_config: Some(TaskSpecContainerSpecDnsConfig {
                        nameservers: Some(vec![crate::hardening::NO_UPSTREAM_DNS.to_owned()]),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                log_driver: Some(TaskSpecLogDriver {
                    name: Some(crate::hardening::LOG_DRIVER.to_owned()),
                    options: Some(h.log_options()),
                }),
                resources: Some(TaskSpecResources {
                    limits: Some(Limit {
                        nano_cpus: Some(h.nano_cpus),
                        memory_bytes: Some(h.memory_bytes),
                        pids: Some(h.pids),
                    }),
                    ..Default::default()
                }),
                restart_policy: Some(TaskSpecRestartPolicy {
                    condition: Some(TaskSpecRestartPolicyConditionEnum::ANY),
                    ..Default::default()
                }),
                placement: Some(TaskSpecPlacement {
                    preferences: Some(vec![TaskSpecPlacementPreferences {
                        spread: Some(TaskSpecPlacementSpread { spread_descriptor: Some("node.id".to_owned()) }),
                    }]),
                    ..Default::default()
                }),
                networks: Some(
                    spec.attachments()
                        .map(|a| NetworkAttachmentConfig {
                            target: Some(a.network.clone()),
                            aliases: Some(a.aliases.clone()),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    async fn scale(&self, name: &str, replicas: Option<i64>, force: bool) -> Result<()> {
        // The engine bumps a fresh service's version on its own (image resolution), so an
        // update may race it: read the version again and retry.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let service = match self.docker.inspect_service(name, None).await {
                Ok(s) => s,
                Err(e) if is_not_found(&e) => return Err(Error::NotFound(name.to_owned())),
                Err(e) => return Err(Error::docker(format!("inspect service {name}"))(e)),
            };
            let version = service
                .version
                .and_then(|v| v.index)
                .ok_or_else(|| Error::Swarm(format!("service {name} has no version")))?;
            let mut spec = service.spec.ok_or_else(|| Error::Swarm(format!("service {name} has no spec")))?;
            let current = spec.mode.as_ref().and_then(|m| m.replicated.as_ref()).and_then(|r| r.replicas);
            if !force && replicas.is_some() && current == replicas {
                return Ok(());
            }
            if let Some(r) = replicas {
                spec.mode = Some(ServiceSpecMode {
                    replicated: Some(ServiceSpecModeReplicated { replicas: Some(r) }),
                    ..Default::default()
                });
            }
            if force && let Some(t) = spec.task_template.as_mut() {
                t.force_update = Some(t.force_update.unwrap_or(0) + 1);
            }
            let options =
                UpdateServiceOptionsBuilder::new().version(i32::try_from(version).unwrap_or(i32::MAX)).build();
            match self.docker.update_service(name, spec, options, None).await {
                Ok(_) => return Ok(()),
                Err(e) if attempt < 10 && e.to_string().contains("out of sequence") => {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => return Err(Error::docker(format!("update service {name}"))(e)),
            }
        }
    }
}

/// `size=16m` and friends in bytes; the engine's tmpfs default when absent.
fn tmpfs_size(opts: &str) -> Option<i64> {
    let size = opts.split(',').find_map(|o| o.strip_prefix("size="))?;
    let (num, mult) = match size.chars().last()? {
        'k' | 'K' => (&size[..size.len() - 1], 1i64 << 10),
        'm' | 'M' => (&size[..size.len() - 1], 1 << 20),
        'g' | 'G' => (&size[..size.len() - 1], 1 << 30),
        _ => (size, 1),
    };
    num.parse::<i64>().ok().map(|n| n * mult)
}

impl Runtime for SwarmRuntime {
    async fn build_image(&self, tag: &str, context: &Path, labels: HashMap<String, String>) -> Result<String> {
        crate::docker::build_image(&self.docker, tag, context, labels).await
    }

    async fn image_id(&self, name: &str) -> Result<Option<String>> {
        crate::docker::image_id(&self.docker, name).await
    }

    async fn create_network(&self, drill: &str, spec: &NetworkSpec) -> Result<()> {
        let request = NetworkCreateRequest {
            name: spec.name.clone(),
            driver: Some("overlay".to_owned()),
            internal: Some(spec.internal()),
            enable_ipv6: Some(false),
            attachable: Some(true),
            ipam: Some(Ipam {
                driver: Some("default".to_owned()),
                config: Some(vec![IpamConfig {
                    subnet: Some(spec.subnet.to_string()),
                    gateway: Some(spec.gateway.to_string()),
                    ..Default::default()
                }]),
                options: None,
            }),
            labels: Some(spec.labels(drill)),
            ..Default::default()
        };
        match self.docker.create_network(request).await {
            Ok(_) => {
                info!(network = spec.name, subnet = %spec.subnet, "overlay network created");
                Ok(())
            }
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 409, .. }) => Ok(()),
            Err(e) => Err(Error::docker(format!("create overlay network {}", spec.name))(e)),
        }
    }

    async fn list_networks(&self, drill: &str) -> Result<Vec<Existing>> {
        crate::docker::list_networks(&self.docker, drill).await
    }

    async fn remove_network(&self, name: &str) -> Result<()> {
        // Tasks of a just-removed service release the network a moment later.
        // Removal is asynchronous too: wait until the engine no longer lists it.
        let mut last = None;
        for _ in 0..60 {
            match self.docker.inspect_network(name, None).await {
                Err(e) if is_not_found(&e) => return Ok(()),
                _ => {}
            }
            match crate::docker::remove_network(&self.docker, name).await {
                Ok(()) => {}
                Err(e) if e.to_string().contains("not found") => {}
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        Err(last.unwrap_or_else(|| Error::Swarm(format!("network {name} is still listed after removal"))))
    }

    async fn create(&self, drill: &str, spec: &InstanceSpec, image_id: &str) -> Result<()> {
        // A service runs once created; `start` after it finds one replica wanted and is a no-op.
        let service = Self::service_spec(drill, spec, image_id, 1);
        self.docker
            .create_service(service, None)
            .await
            .map_err(Error::docker(format!("create service {}", spec.name)))?;
        Ok(())
    }

    async fn list(&self, drill: &str) -> Result<Vec<Existing>> {
        let options = ListServicesOptionsBuilder::new().filters(&labels::drill_filter(drill)).build();
        let services = self.docker.list_services(Some(options)).await.map_err(Error::docker("list services"))?;
        Ok(services
            .into_iter()
            .map(|s| {
                let spec = s.spec.unwrap_or_default();
                let replicas = spec.mode.and_then(|m| m.replicated).and_then(|r| r.replicas).unwrap_or(0);
                Existing {
                    name: spec.name.unwrap_or_default(),
                    id: s.id.unwrap_or_default(),
                    labels: spec.labels.unwrap_or_default(),
                    running: replicas > 0,
                    networks: None,
                }
            })
            .collect())
    }

    async fn start(&self, name: &str) -> Result<()> {
        self.scale(name, Some(1), false).await
    }

    async fn stop(&self, name: &str) -> Result<()> {
        self.scale(name, Some(0), false).await
    }

    async fn restart(&self, name: &str) -> Result<()> {
        self.scale(name, None, true).await
    }

    async fn inspect(&self, name: &str) -> Result<InstanceState> {
        let service = match self.docker.inspect_service(name, None).await {
            Ok(s) => s,
            Err(e) if is_not_found(&e) => return Err(Error::NotFound(name.to_owned())),
            Err(e) => return Err(Error::docker(format!("inspect service {name}"))(e)),
        };
        let raw = serde_json::to_value(&service).unwrap_or_default();
        let filters = HashMap::from([
            ("service".to_owned(), vec![name.to_owned()]),
            ("desired-state".to_owned(), vec!["running".to_owned()]),
        ]);
        let tasks = self
            .docker
            .list_tasks(Some(ListTasksOptionsBuilder::new().filters(&filters).build()))
            .await
            .map_err(Error::docker(format!("list tasks of {name}")))?;
        let states: Vec<TaskState> = tasks.iter().filter_map(|t| t.status.as_ref()?.state).collect();
        let running = states.contains(&TaskState::RUNNING);
        let status = states.first().map(|s| s.to_string()).unwrap_or_else(|| "no task".to_owned());
        // Virtual addresses, by network id (the engine reports ids here).
        let addresses = service
            .endpoint
            .and_then(|e| e.virtual_ips)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|v| {
                let ip = v.addr?.split('/').next()?.parse::<Ipv4Addr>().ok()?;
                Some((v.network_id?, ip))
            })
            .collect();
        let spec = service.spec.unwrap_or_default();
        Ok(InstanceState {
            name: spec.name.unwrap_or_default(),
            id: service.id.unwrap_or_default(),
            running,
            status,
            addresses,
            labels: spec.labels.unwrap_or_default(),
            raw,
        })
    }

    async fn logs(&self, name: &str, tail: usize) -> Result<String> {
        let options = LogsOptionsBuilder::new().stdout(true).stderr(true).tail(&tail.to_string()).build();
        let mut stream = self.docker.service_logs(name, Some(options));
        let mut out = String::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(c) => out.push_str(&c.to_string()),
                Err(e) if is_not_found(&e) => return Err(Error::NotFound(name.to_owned())),
                Err(e) => return Err(Error::docker(format!("logs of service {name}"))(e)),
            }
        }
        Ok(out)
    }

    async fn remove(&self, name: &str) -> Result<()> {
        match self.docker.delete_service(name).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(Error::docker(format!("remove service {name}"))(e)),
        }
    }

    async fn remove_volumes(&self, drill: &str) -> Result<usize> {
        crate::docker::remove_volumes(&self.docker, drill).await
    }

    async fn remove_volume(&self, name: &str) -> Result<()> {
        crate::docker::remove_volume(&self.docker, name).await
    }

    async fn remove_images(&self, drill: &str) -> Result<usize> {
        crate::docker::remove_images(&self.docker, drill).await
    }
}

#[cfg(test)]
mod tests {
    use super::tmpfs_size;

    #[test]
    fn tmpfs_sizes() {
        assert_eq!(tmpfs_size("rw,size=16m"), Some(16 << 20));
        assert_eq!(tmpfs_size("size=512k,noexec"), Some(512 << 10));
        assert_eq!(tmpfs_size("rw,noexec"), None);
    }
}
