//! The locked-down settings every service container gets, and what a scenario may loosen.
//!
//! Not overridable at all: `privileged` stays false, `no-new-privileges` stays on, no host
//! path is ever mounted, and every capability is dropped first (a service may add a named few
//! back). Overridable per service: the user, the read-only root filesystem, extra tmpfs mounts
//! and capabilities added back.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{HostConfig, RestartPolicy, RestartPolicyNameEnum};
use gongfang_core::scenario::Limits;
use serde::Serialize;

/// The user a service runs as unless its scenario says otherwise (`nobody`).
pub const DEFAULT_USER: &str = "65534:65534";
/// The writable scratch space of a read-only container.
pub const DEFAULT_TMPFS: (&str, &str) = ("/tmp", "rw,nosuid,nodev,noexec,size=16m");

/// What a scenario may change about one service's hardening.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HardeningOverrides {
    /// Run as this `uid[:gid]` instead of `nobody`.
    pub user: Option<String>,
    /// `false` gives the container a writable root filesystem.
    pub read_only_rootfs: Option<bool>,
    /// Capabilities added back after `ALL` is dropped, e.g. `NET_BIND_SERVICE`.
    pub cap_add: Vec<String>,
    /// Extra tmpfs mounts: path -> mount options.
    pub tmpfs: BTreeMap<String, String>,
}

/// The resolved hardening of one container: what is sent to the engine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hardening {
    pub user: String,
    pub read_only_rootfs: bool,
    pub cap_add: Vec<String>,
    pub tmpfs: BTreeMap<String, String>,
    pub memory_bytes: i64,
    pub nano_cpus: i64,
    pub pids: i64,
}

impl Hardening {
    /// The defaults with the scenario's limits, then the service's overrides.
    pub fn resolve(limits: &Limits, overrides: &HardeningOverrides) -> Hardening {
        let mut tmpfs = BTreeMap::from([(DEFAULT_TMPFS.0.to_owned(), DEFAULT_TMPFS.1.to_owned())]);
        tmpfs.extend(overrides.tmpfs.iter().map(|(k, v)| (k.clone(), v.clone())));
        let mut cap_add: Vec<String> =
            overrides.cap_add.iter().map(|c| c.to_uppercase().trim_start_matches("CAP_").to_owned()).collect();
        cap_add.sort();
        cap_add.dedup();
        Hardening {
            user: overrides.user.clone().unwrap_or_else(|| DEFAULT_USER.to_owned()),
            read_only_rootfs: overrides.read_only_rootfs.unwrap_or(true),
            cap_add,
            tmpfs,
            memory_bytes: i64::try_from(limits.memory_bytes).unwrap_or(i64::MAX),
            // Whole nano-CPUs; the scenario's validation keeps `cpus` positive and small.
            nano_cpus: (limits.cpus * 1e9).round() as i64,
            pids: i64::from(limits.pids),
        }
    }

    /// The engine's host configuration for a container with this hardening.
    pub fn host_config(&self) -> HostConfig {
        HostConfig {
            cap_drop: Some(vec!["ALL".to_owned()]),
            cap_add: (!self.cap_add.is_empty()).then(|| self.cap_add.clone()),
            security_opt: Some(vec!["no-new-privileges:true".to_owned()]),
            readonly_rootfs: Some(self.read_only_rootfs),
            tmpfs: Some(self.tmpfs.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<HashMap<_, _>>()),
            memory: Some(self.memory_bytes),
            // Equal to `memory`: no swap on top of the limit.
            memory_swap: Some(self.memory_bytes),
            nano_cpus: Some(self.nano_cpus),
            pids_limit: Some(self.pids),
            privileged: Some(false),
            binds: Some(Vec::new()),
            mounts: Some(Vec::new()),
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                maximum_retry_count: None,
            }),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits { cpus: 0.5, memory_bytes: 256 << 20, pids: 128 }
    }

    #[test]
    fn defaults_are_locked_down() {
        let h = Hardening::resolve(&limits(), &HardeningOverrides::default());
        let hc = h.host_config();
        assert_eq!(h.user, DEFAULT_USER);
        assert_eq!(hc.cap_drop, Some(vec!["ALL".to_owned()]));
        assert_eq!(hc.cap_add, None);
        assert_eq!(hc.security_opt, Some(vec!["no-new-privileges:true".to_owned()]));
        assert_eq!(hc.readonly_rootfs, Some(true));
        assert_eq!(hc.privileged, Some(false));
        assert_eq!(hc.memory, Some(256 << 20));
        assert_eq!(hc.memory_swap, Some(256 << 20));
        assert_eq!(hc.nano_cpus, Some(500_000_000));
        assert_eq!(hc.pids_limit, Some(128));
        assert!(hc.tmpfs.unwrap().contains_key("/tmp"));
        assert_eq!(hc.binds, Some(vec![]));
    }

    #[test]
    fn overrides_loosen_only_what_they_name() {
        let o = HardeningOverrides {
            user: Some("0:0".into()),
            read_only_rootfs: Some(false),
            cap_add: vec!["cap_net_bind_service".into()],
            tmpfs: BTreeMap::from([("/run".into(), "size=1m".into())]),
        };
        let hc = Hardening::resolve(&limits(), &o).host_config();
        assert_eq!(hc.cap_drop, Some(vec!["ALL".to_owned()]));
        assert_eq!(hc.cap_add, Some(vec!["NET_BIND_SERVICE".to_owned()]));
        assert_eq!(hc.readonly_rootfs, Some(false));
        assert_eq!(hc.privileged, Some(false));
        assert_eq!(hc.security_opt, Some(vec!["no-new-privileges:true".to_owned()]));
        let tmpfs = hc.tmpfs.unwrap();
        assert!(tmpfs.contains_key("/run") && tmpfs.contains_key("/tmp"));
    }
}
