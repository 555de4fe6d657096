//! Gongfang's container orchestrator: every defending team gets its own hardened copy of every
//! service, on a per-team game network, on Docker (one machine) or Docker Swarm (many).
//!
//! The pieces, from pure to effectful:
//! - [`plan`]: scenario -> networks, addresses and container specs (no IO);
//! - [`hardening`]: the locked-down defaults and the per-service overrides;
//! - [`runtime`]: the [`Runtime`] trait, implemented over bollard by [`DockerRuntime`] and
//!   [`SwarmRuntime`];
//! - [`base_image`]: Debian base images made with debootstrap and imported, no registry;
//! - [`firewall`]: host rules that keep team containers off the platform's ports and the
//!   outside world;
//! - [`reconcile`]: the [`Orchestrator`] that brings reality to the plan, idempotently, and
//!   tears a drill down.

pub mod base_image;
pub mod exec;
pub mod firewall;
pub mod hardening;
pub mod image;
pub mod labels;
pub mod logs;
pub mod plan;
pub mod reconcile;
pub mod runtime;

mod docker;
mod swarm;

pub use base_image::BaseImage;
pub use docker::DockerRuntime;
pub use exec::{Attached, ExecOutput, ExecRequest};
pub use firewall::{Family, Firewall};
pub use hardening::{Hardening, HardeningOverrides};
pub use image::BuildLimits;
pub use logs::{LogLine, LogStream, MAX_LINE_BYTES, Retention, ServiceLogs};
pub use plan::{
    InstanceSpec, NetworkKind, NetworkSpec, Plan, STAGING, ServiceExtras, Settings, Sidecar, VolumeSpec, plan,
};
pub use reconcile::{Orchestrator, Report, Teardown};
pub use runtime::{Backend, Engine, Existing, InstanceState, Runtime};
pub use swarm::SwarmRuntime;

/// Everything that can go wrong while orchestrating containers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot reach the Docker engine: {0}")]
    Connect(#[source] bollard::errors::Error),
    #[error("Docker engine refused {action}: {source}")]
    Docker {
        action: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("image `{0}` is not on this engine and nothing can be pulled; build or import it first")]
    ImageMissing(String),
    #[error("building image `{tag}` failed: {message}")]
    Build { tag: String, message: String },
    #[error("building image `{tag}` took longer than {seconds} s and was stopped")]
    BuildTimeout { tag: String, seconds: u64 },
    #[error("cannot read build context {path}: {source}")]
    Context {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the plan is impossible: {0}")]
    Plan(String),
    #[error("no container or service `{0}` belongs to this drill")]
    NotFound(String),
    #[error("firewall command `{command}` failed: {message}")]
    Firewall { command: String, message: String },
    #[error("cannot make the base image: {0}")]
    BaseImage(String),
    #[error("swarm: {0}")]
    Swarm(String),
}

impl Error {
    pub(crate) fn docker(action: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> Error {
        let action = action.into();
        move |source| Error::Docker { action, source }
    }
}

/// Whether a bollard error is the engine's "no such object" answer.
pub(crate) fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(e, bollard::errors::Error::DockerResponseServerError { status_code: 404, .. })
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
