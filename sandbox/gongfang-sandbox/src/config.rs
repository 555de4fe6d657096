//! How the sandbox is sized and what each action may use.

use std::path::PathBuf;
use std::time::Duration;

/// Limits applied to every action.
#[derive(Debug, Clone)]
pub struct ActionLimits {
    /// Wall-clock time for one action, host I/O included.
    pub timeout: Duration,
    /// Time the guest may spend running its own code (measured in epoch ticks); stops CPU
    /// loops even when the wall-clock timer cannot get a turn.
    pub cpu_time: Duration,
    /// Largest linear memory a checker may grow to, in bytes.
    pub memory_bytes: usize,
    /// Total private log per action, in bytes (log lines plus the verdict's private lines).
    pub max_log_bytes: usize,
    /// Longest public message, flag id or single flag, in bytes.
    pub max_message_bytes: usize,
    /// Largest private state blob `put` may return, in bytes.
    pub max_state_bytes: usize,
    /// Most flags one `exploit` may return.
    pub max_flags: usize,
    /// Most sockets a checker may hold at once. Every socket is a file descriptor of the
    /// platform's process, opened before any address check, so a checker must not hoard them.
    pub max_sockets: usize,
    /// Most host resources (sockets, streams, pollables, network handles) a checker may hold
    /// at once: the size of its WASI resource table.
    pub max_resources: usize,
}

impl Default for ActionLimits {
    fn default() -> Self {
        ActionLimits {
            timeout: Duration::from_secs(10),
            cpu_time: Duration::from_secs(2),
            memory_bytes: 64 << 20,
            max_log_bytes: 64 << 10,
            max_message_bytes: 1024,
            max_state_bytes: 64 << 10,
            max_flags: 1000,
            max_sockets: 64,
            max_resources: 512,
        }
    }
}

/// How the sandbox is built.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Where compiled components are kept between runs; `None` compiles every load.
    pub cache_dir: Option<PathBuf>,
    /// How many actions may run at once (sizes the pooling allocator).
    pub max_concurrent_actions: u32,
    /// How often the epoch advances; the granularity of [`ActionLimits::cpu_time`].
    pub epoch_tick: Duration,
    /// Limits for every action.
    pub limits: ActionLimits,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            cache_dir: None,
            max_concurrent_actions: 1000,
            epoch_tick: Duration::from_millis(10),
            limits: ActionLimits::default(),
        }
    }
}
