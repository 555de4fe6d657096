//! The checker sandbox: runs each service's checker as a WebAssembly component in wasmtime,
//! one fresh instance per action, with hard limits.
//!
//! - One [`Sandbox`] per process: one wasmtime `Engine` with the pooling allocator, an epoch
//!   ticker, and an on-disk cache of compiled components keyed by content hash.
//! - [`Sandbox::load`] gives a [`Checker`]: the component pre-linked (`InstancePre`), ready to
//!   instantiate in microseconds.
//! - Every action ([`Checker::check`], [`Checker::put`], [`Checker::get`],
//!   [`Checker::exploit`]) gets a fresh `Store` and ends in an [`ActionOutcome`](gongfang_core::ActionOutcome). Whatever the
//!   guest does wrong — trap, timeout, CPU loop, memory, log, socket or resource limit, an address outside the
//!   target — is `checker-error` with a [`CheckerFault`](gongfang_core::CheckerFault) saying why, never a verdict
//!   against the team.
//!
//! Boundary: this crate knows nothing of the database or the game loop; it runs one action at
//! a time for whoever calls it.

mod cache;
mod checker;
mod config;
mod state;

pub use checker::{Checker, CheckerInfo};
pub use config::{ActionLimits, SandboxConfig};

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use gongfang_core::CheckerFault;
use wasmtime::component::{Component, Linker};
use wasmtime::{Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::state::ActionState;

/// What can go wrong setting up the sandbox or loading a checker.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot configure the WebAssembly engine: {0}")]
    Engine(String),
    #[error("cannot read checker component {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path} is not a valid checker component: {message}")]
    Compile { path: String, message: String },
    #[error("checker {path} does not fit the gongfang:checker world: {message}")]
    Link { path: String, message: String },
    #[error("compile cache {path}: {source}")]
    Cache { path: String, source: std::io::Error },
    #[error("checker failed: {0}")]
    Checker(CheckerFault),
    #[error("cannot start the epoch ticker: {0}")]
    Ticker(std::io::Error),
}

/// The checker runtime: one engine, one linker, one epoch ticker. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<ActionState>,
    pub(crate) config: SandboxConfig,
    stop_ticker: Arc<AtomicBool>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

impl Sandbox {
    /// Builds the engine (pooling allocator sized by `config`), links WASI and the host
    /// interface, and starts the epoch ticker thread.
    pub fn new(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        let engine = build_engine(&config)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| SandboxError::Engine(format!("{e:#}")))?;
        state::add_host_to_linker(&mut linker).map_err(|e| SandboxError::Engine(format!("{e:#}")))?;

        let stop_ticker = Arc::new(AtomicBool::new(false));
        spawn_ticker(engine.clone(), config.epoch_tick, Arc::clone(&stop_ticker))?;
        if let Some(dir) = &config.cache_dir {
            std::fs::create_dir_all(dir)
                .map_err(|source| SandboxError::Cache { path: dir.display().to_string(), source })?;
        }
        Ok(Sandbox { inner: Arc::new(Inner { engine, linker, config, stop_ticker }) })
    }

    /// The configuration this sandbox runs with.
    pub fn config(&self) -> &SandboxConfig {
        &self.inner.config
    }

    /// Loads a checker component: from the compile cache when this exact component was
    /// compiled before by a compatible engine, else compiled now (and cached).
    pub fn load(&self, path: impl AsRef<Path>) -> Result<Checker, SandboxError> {
        let path = path.as_ref();
        let bytes =
            std::fs::read(path).map_err(|source| SandboxError::Read { path: path.display().to_string(), source })?;
        self.load_bytes(&path.display().to_string(), &bytes)
    }

    /// Like [`Sandbox::load`], from bytes already in memory; `name` is used in messages.
    pub fn load_bytes(&self, name: &str, bytes: &[u8]) -> Result<Checker, SandboxError> {
        let component: Component = cache::compile(&self.inner, name, bytes)?;
        Checker::new(Arc::clone(&self.inner), name, &component)
    }
}

/// How much of a pool slot's memory (and of its tables) may stay resident between actions:
/// enough for what a checker written in Rust touches (its 1 MiB stack, data and heap), so a
/// slot's pages are reset in place rather than given back; a slot of a checker that grew
/// beyond it gives back the rest.
const KEEP_RESIDENT: usize = 2 << 20;

fn build_engine(config: &SandboxConfig) -> Result<Engine, SandboxError> {
    let n = config.max_concurrent_actions.max(1);
    let memory = config.limits.memory_bytes;
    let mut pool = PoolingAllocationConfig::new();
    // A Rust checker is one component with a handful of core instances (the program, the
    // WASI adapter and their glue) and two memories; leave room for a little more.
    pool.total_component_instances(n)
        .total_core_instances(n.saturating_mul(8))
        .total_memories(n.saturating_mul(2))
        .total_tables(n.saturating_mul(4))
        .total_stacks(n)
        .max_memory_size(memory);
    // Between actions a slot's memory and tables must be reset. Given back to the kernel
    // (`madvise`), every action pays for the call, a TLB shootdown on every core and page
    // faults when the next action touches its pages again. Where the kernel can say which pages
    // were written (`PAGEMAP_SCAN`, Linux 6.7), only those are reset by hand and stay
    // resident; elsewhere a reset by hand would clear the whole region, so the pages go back.
    if PoolingAllocationConfig::is_pagemap_scan_available() {
        pool.pagemap_scan(Enabled::Yes)
            .linear_memory_keep_resident(KEEP_RESIDENT.min(memory))
            .table_keep_resident(KEEP_RESIDENT);
    }

    let mut wasm = wasmtime::Config::new();
    wasm.epoch_interruption(true)
        // Memories never grow past the limit, so reserving 4 GiB of address space per slot
        // (the default) would only make the pool absurdly large.
        .memory_reservation(memory as u64)
        .memory_guard_size(64 * 1024)
        .memory_reservation_for_growth(0)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&wasm).map_err(|e| SandboxError::Engine(format!("{e:#}")))
}

fn spawn_ticker(engine: Engine, tick: Duration, stop: Arc<AtomicBool>) -> Result<(), SandboxError> {
    std::thread::Builder::new()
        .name("gongfang-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                engine.increment_epoch();
            }
        })
        .map(|_| ())
        .map_err(SandboxError::Ticker)
}
