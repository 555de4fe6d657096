//! The container runtime the orchestrator drives: one trait, implemented for plain Docker
//! (containers on bridge networks) and for Docker Swarm (services on overlay networks).

use std::collections::HashMap;
use std::future::Future;
use std::net::Ipv4Addr;
use std::path::Path;

use crate::plan::{InstanceSpec, NetworkSpec};
use crate::{DockerRuntime, Result, SwarmRuntime};

gongfang_core::named_enum! {
    /// Which engine mode runs the drill.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum Backend {
        /// Containers on one Docker engine.
        #[default]
        Docker = "docker",
        /// Swarm services, spread over the swarm's nodes.
        Swarm = "swarm",
    }
}

/// A container (or Swarm service) or network that exists on the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Existing {
    pub name: String,
    pub id: String,
    pub labels: HashMap<String, String>,
    /// Running (containers) or wanted running (services); always true for networks.
    pub running: bool,
    /// The networks a container is attached to; `None` where the engine does not say.
    pub networks: Option<Vec<String>>,
}

/// What `inspect` reports about one instance.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceState {
    pub name: String,
    pub id: String,
    pub running: bool,
    /// The engine's word for the state, e.g. `running`, `exited`, `created`.
    pub status: String,
    /// Addresses by network name.
    pub addresses: HashMap<String, Ipv4Addr>,
    pub labels: HashMap<String, String>,
    /// The engine's full answer, for operators and tests that check the hardening.
    pub raw: serde_json::Value,
}

/// The operations a drill needs from a container engine. Every object is found by the labels
/// in [`crate::labels`]; names are unique per drill.
pub trait Runtime: Send + Sync {
    /// Builds `tag` from a build folder (sent as a tar context); returns the image id.
    fn build_image(
        &self,
        tag: &str,
        context: &Path,
        labels: HashMap<String, String>,
    ) -> impl Future<Output = Result<String>> + Send;
    /// The id of a local image, `None` if the engine does not have it.
    fn image_id(&self, name: &str) -> impl Future<Output = Result<Option<String>>> + Send;
    /// Creates the network if it is missing; an existing one of the same name is kept.
    fn create_network(&self, drill: &str, spec: &NetworkSpec) -> impl Future<Output = Result<()>> + Send;
    fn list_networks(&self, drill: &str) -> impl Future<Output = Result<Vec<Existing>>> + Send;
    fn remove_network(&self, name: &str) -> impl Future<Output = Result<()>> + Send;
    /// Creates the instance, attached to all its networks, without starting it.
    fn create(&self, drill: &str, spec: &InstanceSpec, image_id: &str) -> impl Future<Output = Result<()>> + Send;
    fn list(&self, drill: &str) -> impl Future<Output = Result<Vec<Existing>>> + Send;
    fn start(&self, name: &str) -> impl Future<Output = Result<()>> + Send;
    fn stop(&self, name: &str) -> impl Future<Output = Result<()>> + Send;
    fn restart(&self, name: &str) -> impl Future<Output = Result<()>> + Send;
    fn inspect(&self, name: &str) -> impl Future<Output = Result<InstanceState>> + Send;
    /// The last `tail` lines of the instance's output.
    fn logs(&self, name: &str, tail: usize) -> impl Future<Output = Result<String>> + Send;
    /// Removes the instance and its anonymous volumes; a missing one is not an error.
    fn remove(&self, name: &str) -> impl Future<Output = Result<()>> + Send;
    /// Removes every volume labelled with the drill; returns how many.
    fn remove_volumes(&self, drill: &str) -> impl Future<Output = Result<usize>> + Send;
    /// Removes one named volume; a missing one is not an error.
    fn remove_volume(&self, name: &str) -> impl Future<Output = Result<()>> + Send;
    /// Removes every image built for the drill (labelled with it); returns how many tags.
    fn remove_images(&self, drill: &str) -> impl Future<Output = Result<usize>> + Send;
    /// A fresh instance from the image: the old one and everything it wrote are gone.
    fn reset(&self, drill: &str, spec: &InstanceSpec, image_id: &str) -> impl Future<Output = Result<()>> + Send {
        async move {
            self.remove(&spec.name).await?;
            self.create(drill, spec, image_id).await?;
            self.start(&spec.name).await
        }
    }
}

/// The runtime chosen by [`Backend`], as one type.
#[derive(Debug, Clone)]
pub enum Engine {
    Docker(DockerRuntime),
    Swarm(SwarmRuntime),
}

impl Engine {
    /// Connects to the local engine (`DOCKER_HOST` or the default socket) in the given mode.
    pub fn connect(backend: Backend) -> Result<Engine> {
        let docker = bollard::Docker::connect_with_defaults().map_err(crate::Error::Connect)?;
        Ok(match backend {
            Backend::Docker => Engine::Docker(DockerRuntime::new(docker)),
            Backend::Swarm => Engine::Swarm(SwarmRuntime::new(docker)),
        })
    }

    pub fn docker(&self) -> &bollard::Docker {
        match self {
            Engine::Docker(r) => r.docker(),
            Engine::Swarm(r) => r.docker(),
        }
    }
}

macro_rules! delegate {
    ($self:ident, $r:ident => $e:expr) => {
        match $self {
            Engine::Docker($r) => $e.await,
            Engine::Swarm($r) => $e.await,
        }
    };
}

impl Runtime for Engine {
    async fn build_image(&self, tag: &str, context: &Path, labels: HashMap<String, String>) -> Result<String> {
        delegate!(self, r => r.build_image(tag, context, labels))
    }
    async fn image_id(&self, name: &str) -> Result<Option<String>> {
        delegate!(self, r => r.image_id(name))
    }
    async fn create_network(&self, drill: &str, spec: &NetworkSpec) -> Result<()> {
        delegate!(self, r => r.create_network(drill, spec))
    }
    async fn list_networks(&self, drill: &str) -> Result<Vec<Existing>> {
        delegate!(self, r => r.list_networks(drill))
    }
    async fn remove_network(&self, name: &str) -> Result<()> {
        delegate!(self, r => r.remove_network(name))
    }
    async fn create(&self, drill: &str, spec: &InstanceSpec, image_id: &str) -> Result<()> {
        delegate!(self, r => r.create(drill, spec, image_id))
    }
    async fn list(&self, drill: &str) -> Result<Vec<Existing>> {
        delegate!(self, r => r.list(drill))
    }
    async fn start(&self, name: &str) -> Result<()> {
        delegate!(self, r => r.start(name))
    }
    async fn stop(&self, name: &str) -> Result<()> {
        delegate!(self, r => r.stop(name))
    }
    async fn restart(&self, name: &str) -> Result<()> {
        delegate!(self, r => r.restart(name))
    }
    async fn inspect(&self, name: &str) -> Result<InstanceState> {
        delegate!(self, r => r.inspect(name))
    }
    async fn logs(&self, name: &str, tail: usize) -> Result<String> {
        delegate!(self, r => r.logs(name, tail))
    }
    async fn remove(&self, name: &str) -> Result<()> {
        delegate!(self, r => r.remove(name))
    }
    async fn remove_volumes(&self, drill: &str) -> Result<usize> {
        delegate!(self, r => r.remove_volumes(drill))
    }
    async fn remove_volume(&self, name: &str) -> Result<()> {
        delegate!(self, r => r.remove_volume(name))
    }
    async fn remove_images(&self, drill: &str) -> Result<usize> {
        delegate!(self, r => r.remove_images(drill))
    }
    async fn reset(&self, drill: &str, spec: &InstanceSpec, image_id: &str) -> Result<()> {
        delegate!(self, r => r.reset(drill, spec, image_id))
    }
}
