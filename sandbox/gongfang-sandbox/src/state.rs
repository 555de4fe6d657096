//! What one action's `Store` holds: its WASI context (network only to the target),
//! its limits (memory, log, sockets, resource table) and the private log collected so far;
//! plus the bindings for the `gongfang:checker` world.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use wasmtime::component::{HasSelf, Linker, Resource, ResourceTable};
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::bindings::sockets::network::{self, ErrorCode, IpAddressFamily};
use wasmtime_wasi::p2::bindings::sockets::tcp_create_socket;
use wasmtime_wasi::p2::{SocketError, SocketResult, TcpSocket};
use wasmtime_wasi::sockets::{SocketAddrUse, WasiSocketsView};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::config::ActionLimits;
use gongfang_core::{CheckerFault, Target};

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "checker",
        // `log` traps when the checker exceeds its log budget.
        imports: { default: trappable },
        exports: { default: async },
    });
}

/// The store data of one action.
pub(crate) struct ActionState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    memory_cap: usize,
    max_log_bytes: usize,
    pub(crate) log: Vec<String>,
    pub(crate) log_bytes: usize,
    /// Epoch ticks during which guest code ran.
    pub(crate) cpu_ticks: u64,
    /// Why the host stopped the guest, when it was the host.
    pub(crate) fault: Option<CheckerFault>,
    max_sockets: usize,
    /// Table handles of the TCP sockets the guest created and may still hold.
    live_sockets: Vec<u32>,
    /// The first address the guest tried to use outside its target, if any.
    pub(crate) violation: Arc<Mutex<Option<(SocketAddr, String)>>>,
}

impl ActionState {
    pub(crate) fn new(target: &Target, limits: &ActionLimits) -> ActionState {
        let violation = Arc::new(Mutex::new(None));
        let policy = NetworkPolicy {
            ip: target.address.to_canonical(),
            ports: target.ports.clone(),
            violation: Arc::clone(&violation),
        };
        let policy = Arc::new(policy);
        let mut wasi = WasiCtxBuilder::new();
        // No files, no environment, no arguments, no stdin: the builder grants nothing of
        // those unless asked. Network: TCP to the target only.
        wasi.allow_tcp(true).allow_udp(false).allow_ip_name_lookup(false).socket_addr_check(move |addr, usage| {
            let allowed = policy.allows(addr, usage);
            Box::pin(async move { allowed })
        });
        // Every host resource the guest holds (socket, stream, pollable, network handle) is an
        // entry here; a full table traps the guest, which the action reports as its fault.
        let mut table = ResourceTable::new();
        table.set_max_capacity(limits.max_resources);
        ActionState {
            wasi: wasi.build(),
            table,
            limits: StoreLimitsBuilder::new()
                .memory_size(limits.memory_bytes)
                .table_elements(100_000)
                .instances(64)
                .tables(64)
                .memories(8)
                .build(),
            memory_cap: limits.memory_bytes,
            max_log_bytes: limits.max_log_bytes,
            log: Vec::new(),
            log_bytes: 0,
            cpu_ticks: 0,
            fault: None,
            max_sockets: limits.max_sockets,
            live_sockets: Vec::new(),
            violation,
        }
    }

    /// Adds a line to the private log, or reports the log limit when it would be exceeded.
    pub(crate) fn push_log(&mut self, line: String) -> Result<(), CheckerFault> {
        let size = line.len() + 1;
        if self.log_bytes + size > self.max_log_bytes {
            return Err(CheckerFault::LogLimit { limit: self.max_log_bytes });
        }
        self.log_bytes += size;
        self.log.push(line);
        Ok(())
    }

    pub(crate) fn violation(&self) -> Option<(SocketAddr, String)> {
        self.violation.lock().map(|v| v.clone()).unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }
}

/// Which addresses a checker may use: connect to the target's IP on the service's ports, and
/// the implicit bind to an unspecified local address that every connect performs.
struct NetworkPolicy {
    ip: IpAddr,
    ports: Vec<u16>,
    violation: Arc<Mutex<Option<(SocketAddr, String)>>>,
}

impl NetworkPolicy {
    fn allows(&self, addr: SocketAddr, usage: SocketAddrUse) -> bool {
        let allowed = match usage {
            SocketAddrUse::TcpBind => addr.ip().is_unspecified() && addr.port() == 0,
            SocketAddrUse::TcpConnect => addr.ip().to_canonical() == self.ip && self.ports.contains(&addr.port()),
            _ => false,
        };
        if !allowed {
            // Only the first attempt is kept: it decides the action's fault, which is logged
            // once when the action ends. A checker retrying in a loop must not flood the log.
            let mut slot = self.violation.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            slot.get_or_insert((addr, format!("{usage:?}")));
        }
        allowed
    }
}

impl WasiView for ActionState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Shadows WASI's `create-tcp-socket` to count the sockets a checker holds: the socket (a file
/// descriptor of the platform) exists before any address is checked, so the address policy
/// alone cannot stop a checker from hoarding them.
impl tcp_create_socket::Host for ActionState {
    fn create_tcp_socket(&mut self, family: IpAddressFamily) -> SocketResult<Resource<TcpSocket>> {
        // Forget the sockets the guest has dropped: their slots are free or hold something else.
        let table = &self.table;
        self.live_sockets.retain(|&rep| table.get(&Resource::<TcpSocket>::new_borrow(rep)).is_ok());
        if self.live_sockets.len() >= self.max_sockets {
            let fault = CheckerFault::SocketLimit { limit: self.max_sockets };
            let message = fault.to_string();
            self.fault = Some(fault);
            return Err(SocketError::trap(wasmtime::format_err!("{message}")));
        }
        let socket = tcp_create_socket::Host::create_tcp_socket(&mut self.sockets(), family)?;
        if !self.live_sockets.contains(&socket.rep()) {
            self.live_sockets.push(socket.rep());
        }
        Ok(socket)
    }
}

/// Needed by the shadowed `create-tcp-socket` (it turns its errors into WASI error codes);
/// plain delegation to WASI's own implementation.
impl network::Host for ActionState {
    fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<ErrorCode> {
        network::Host::convert_error_code(&mut self.sockets(), error)
    }

    fn network_error_code(&mut self, err: Resource<network::Error>) -> wasmtime::Result<Option<ErrorCode>> {
        network::Host::network_error_code(&mut self.sockets(), err)
    }
}

impl network::HostNetwork for ActionState {
    fn drop(&mut self, this: Resource<network::Network>) -> wasmtime::Result<()> {
        network::HostNetwork::drop(&mut self.sockets(), this)
    }
}

impl ResourceLimiter for ActionState {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let granted = self.limits.memory_growing(current, desired, maximum)?;
        if !granted && desired > self.memory_cap {
            // Record whose limit it was, then trap: a checker that cannot get memory cannot
            // say anything trustworthy about the service.
            self.fault = Some(CheckerFault::MemoryLimit { limit: self.memory_cap });
            wasmtime::bail!("checker exceeded its memory limit of {} bytes", self.memory_cap);
        }
        Ok(granted)
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

impl bindings::gongfang::checker::host::Host for ActionState {
    fn log(&mut self, line: String) -> wasmtime::Result<()> {
        match self.push_log(line) {
            Ok(()) => Ok(()),
            Err(fault) => {
                let message = fault.to_string();
                self.fault = Some(fault);
                Err(wasmtime::format_err!("{message}"))
            }
        }
    }
}

impl bindings::gongfang::checker::types::Host for ActionState {}

/// Links the `gongfang:checker` host interfaces, and replaces WASI's `create-tcp-socket` (linked
/// before, by `wasmtime_wasi::p2::add_to_linker_async`) with the counting one above.
pub(crate) fn add_host_to_linker(linker: &mut Linker<ActionState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let counted = tcp_create_socket::add_to_linker::<ActionState, HasSelf<ActionState>>(linker, |s| s);
    linker.allow_shadowing(false);
    counted?;
    bindings::gongfang::checker::host::add_to_linker::<ActionState, HasSelf<ActionState>>(linker, |s| s)?;
    bindings::gongfang::checker::types::add_to_linker::<ActionState, HasSelf<ActionState>>(linker, |s| s)
}
