//! The locked-down settings every service container gets, and what a scenario may loosen.
//!
//! Not overridable at all: `privileged` stays false, `no-new-privileges` stays on, no host
//! path is ever mounted, and every capability is dropped first (a service may add a named few
//! back). Overridable per service: the user, the read-only root filesystem, extra tmpfs mounts
//! and capabilities added back.
//!
//! Two more settings keep a hostile service from reaching past its container through Docker's
//! own machinery: its output goes to rotated `json-file` logs bounded by the scenario's `[logs]`
//! table, so writing gigabytes to stdout fills no disk; and the engine's embedded DNS server,
//! which answers the names of the drill's containers, forwards every other name to
//! [`NO_UPSTREAM_DNS`] inside the container itself, never to a resolver of the host.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{HostConfig, HostConfigLogConfig, RestartPolicy, RestartPolicyNameEnum};
use gongfang_core::scenario::{Limits, LogRules};
use serde::Serialize;

/// The user a service runs as unless its scenario says otherwise (`nobody`).
pub const DEFAULT_USER: &str = "65534:65534";
/// The writable scratch space of a read-only container.
pub const DEFAULT_TMPFS: (&str, &str) = ("/tmp", "rw,nosuid,nodev,noexec,size=16m");
/// The log driver of every service container: its files can be bounded (`max-size`,
/// `max-file`) and the engine reads them back for the judges.
pub const LOG_DRIVER: &str = "json-file";
/// The only upstream the embedded DNS server of a service container may forward a name it does
/// not know to: the container's own loopback, where nothing of the host listens. Without it the
/// engine would forward to the host's resolvers, a way out of the drill's networks.
pub const NO_UPSTREAM_DNS: &str = "127.0.0.1";

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
    /// Largest log file in bytes, and how many are kept (`[logs]`).
    pub log_max_size: u64,
    pub log_max_files: u32,
}

impl Hardening {
    /// The defaults with the scenario's limits, then the service's overrides.
    pub fn resolve(limits: &Limits, logs: &LogRules, overrides: &HardeningOverrides) -> Hardening {
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
            log_max_size: logs.max_size_bytes,
            log_max_files: logs.max_files,
        }
    }

    /// The log driver's options: Docker rotates the log at `max-size` and keeps `max-file` files.
    pub fn log_options(&self) -> HashMap<String, String> {
        HashMap::from([
            ("max-size".to_owned(), self.log_max_size.to_string()),
            ("max-file".to_owned(), self.log_max_files.to_string()),
        ])
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
            log_config: Some(HostConfigLogConfig {
                typ: Some(LOG_DRIVER.to_owned()),
                config: Some(self.log_options()),
            }),
            dns: Some(vec![NO_UPSTREAM_DNS.to_owned()]),
            dns_search: Some(Vec::new()),
            dns_options: Some(Vec::new()),
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

    fn logs() -> LogRules {
        LogRules { max_size_bytes: 1 << 20, max_files: 3 }
    }

    #[test]
    fn defaults_are_locked_down() {
        let h = Hardening::resolve(&limits(), &logs(), &HardeningOverrides::default());
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
    fn logs_are_rotated_and_dns_stays_in_the_container() {
        let hc = Hardening::resolve(&limits(), &logs(), &HardeningOverrides::default()).host_config();
        let log = hc.log_config.unwrap();
        assert_eq!(log.typ.as_deref(), Some("json-file"));
        let options = log.config.unwrap();
        assert_eq!(options.get("max-size").map(String::as_str), Some("1048576"));
        assert_eq!(options.get("max-file").map(String::as_str), Some("3"));
        assert_eq!(hc.dns, Some(vec!["127.0.0.1".to_owned()]));
        // The defaults a scenario without `[logs]` gets.
        let d = Hardening::resolve(&limits(), &LogRules::default(), &HardeningOverrides::default());
        assert_eq!((d.log_max_size, d.log_max_files), (64 << 20, 8));
    }

    #[test]
    fn overrides_loosen_only_what_they_name() {
        let o = HardeningOverrides {
            user: Some("0:0".into()),
            read_only_rootfs: Some(false),
            cap_add: vec!["cap_net_bind_service".into()],
            tmpfs: BTreeMap::from([("/run".into(), "size=1m".into())]),
        };
        let hc = Hardening::resolve(&limits(), &logs(), &o).host_config();
        assert_eq!(hc.cap_drop, Some(vec!["ALL".to_owned()]));
        assert_eq!(hc.cap_add, Some(vec!["NET_BIND_SERVICE".to_owned()]));
        assert_eq!(hc.readonly_rootfs, Some(false));
        assert_eq!(hc.privileged, Some(false));
        assert_eq!(hc.security_opt, Some(vec!["no-new-privileges:true".to_owned()]));
        let tmpfs = hc.tmpfs.unwrap();
        assert!(tmpfs.contains_key("/run") && tmpfs.contains_key("/tmp"));
    }
}
