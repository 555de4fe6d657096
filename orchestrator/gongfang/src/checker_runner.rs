//! The game engine's [`CheckerRunner`] over the wasm sandbox: one loaded checker per service,
//! run on a runtime of its own ([`CheckerRuntime`]).

use std::collections::HashMap;
use std::time::Duration;

use gongfang_core::scenario::Scenario;
use gongfang_core::{Action, ActionOutcome, CheckerFault, ServiceId};
use gongfang_engine::{ActionRequest, CheckerRunner};
use gongfang_sandbox::{Checker, Sandbox, SandboxError};
use tokio::runtime::{Handle, Runtime};

/// How long shutting the checkers' runtime down waits for actions still running.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A multi-thread Tokio runtime, with worker threads of its own, for checker actions only.
///
/// A tick runs thousands of actions at once, and a checker is wasm that runs until its fuel
/// or epoch makes it yield: on the servers' runtime a busy tick would occupy every worker
/// thread and stall the submission and web tasks queued behind it, so a team's flags would
/// wait for our checkers. On their own threads the checkers compete with the servers only for
/// the CPU, where the kernel shares it fairly, never for a worker thread. The engine itself
/// stays on the main runtime: it only awaits the actions' results.
#[derive(Debug)]
pub struct CheckerRuntime {
    runtime: Option<Runtime>,
}

impl CheckerRuntime {
    /// Starts the runtime with one worker thread per core (at least two).
    pub fn new() -> std::io::Result<CheckerRuntime> {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("gongfang-checker")
            .enable_all()
            .build()?;
        Ok(CheckerRuntime { runtime: Some(runtime) })
    }

    /// Where to spawn actions.
    pub fn handle(&self) -> Handle {
        self.runtime.as_ref().expect("the checker runtime runs until dropped").handle().clone()
    }

    /// Stops the runtime once the engine no longer runs actions: waits a little for actions
    /// still running, then drops them (their results would be thrown away anyway).
    pub async fn shutdown(mut self) {
        if let Some(runtime) = self.runtime.take() {
            // A runtime may not be dropped, nor waited for, on an async worker thread.
            let _ = tokio::task::spawn_blocking(move || runtime.shutdown_timeout(SHUTDOWN_GRACE)).await;
        }
    }
}

impl Drop for CheckerRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Runs each service's checker component for the engine.
#[derive(Clone)]
pub struct SandboxRunner {
    checkers: HashMap<ServiceId, Checker>,
    /// Where actions run; `None` runs them on the caller's runtime.
    runtime: Option<Handle>,
}

impl std::fmt::Debug for SandboxRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut services: Vec<u8> = self.checkers.keys().map(|s| s.0).collect();
        services.sort_unstable();
        f.debug_struct("SandboxRunner").field("services", &services).finish()
    }
}

impl SandboxRunner {
    /// Loads (compiling, or reading from the sandbox's cache) the checker of every service of
    /// the scenario. Fails on the first checker that does not load, naming it.
    pub fn load(sandbox: &Sandbox, scenario: &Scenario) -> Result<SandboxRunner, SandboxError> {
        let mut checkers = HashMap::new();
        for service in &scenario.services {
            checkers.insert(service.id, sandbox.load(&service.checker)?);
        }
        Ok(SandboxRunner { checkers, runtime: None })
    }

    /// The services whose checker has a reference exploit, by id. A checker that cannot say
    /// (its `info` failed) is left out, and the drill's log says so.
    pub async fn with_exploit(&self) -> Vec<ServiceId> {
        let mut services = Vec::new();
        for (service, checker) in &self.checkers {
            match checker.info().await {
                Ok(info) if info.has_exploit => services.push(*service),
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(service = service.0, %error, "no exploit replay: the checker's info failed")
                }
            }
        }
        services.sort_unstable();
        services
    }

    /// Whether the checker of `service` has a reference exploit.
    pub async fn has_exploit(&self, service: ServiceId) -> bool {
        match self.checkers.get(&service) {
            Some(checker) => checker.info().await.is_ok_and(|info| info.has_exploit),
            None => false,
        }
    }

    /// Runs every action on `runtime` (a [`CheckerRuntime`]'s handle) instead of the caller's.
    pub fn on(self, runtime: Handle) -> SandboxRunner {
        SandboxRunner { runtime: Some(runtime), ..self }
    }
}

impl CheckerRunner for SandboxRunner {
    async fn run(&self, request: ActionRequest) -> ActionOutcome {
        let Some(checker) = self.checkers.get(&request.service) else {
            let message = format!("no checker loaded for service {}", request.service);
            return ActionOutcome::checker_error(request.action, CheckerFault::Platform { message }, Vec::new());
        };
        let Some(runtime) = &self.runtime else { return run_action(checker, &request).await };
        let (checker, action) = (checker.clone(), request.action);
        let mut task = AbortOnDrop(runtime.spawn(async move { run_action(&checker, &request).await }));
        match (&mut task.0).await {
            Ok(outcome) => outcome,
            Err(error) => {
                let message = format!("the checker runtime dropped the action: {error}");
                ActionOutcome::checker_error(action, CheckerFault::Platform { message }, Vec::new())
            }
        }
    }
}

/// An action spawned on the checkers' runtime, cancelled if the engine stops waiting for it
/// (its own timeout, shutdown), so abandoned actions do not pile up there.
struct AbortOnDrop(tokio::task::JoinHandle<ActionOutcome>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One action of one checker.
async fn run_action(checker: &Checker, request: &ActionRequest) -> ActionOutcome {
    let (target, ctx) = (&request.target, &request.ctx);
    match (request.action, &request.flag) {
        (Action::Check, _) => checker.check(target, ctx).await,
        (Action::Put, Some(f)) => checker.put(target, ctx, f.store, &f.flag).await,
        (Action::Get, Some(f)) => checker.get(target, ctx, f.store, &f.flag, &f.state).await,
        (Action::Exploit, Some(f)) => checker.exploit(target, ctx, f.store, &f.flag_id).await,
        (action, _) => {
            let message = format!("the engine asked for `{action}` without the flag it needs");
            ActionOutcome::checker_error(action, CheckerFault::Platform { message }, Vec::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    /// Checkers that hold every one of their runtime's threads leave the servers' runtime free:
    /// it accepts and answers a connection while they are stuck.
    #[tokio::test]
    async fn checkers_holding_all_their_threads_do_not_stall_the_servers_runtime() {
        let runtime = CheckerRuntime::new().unwrap();
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
        let (release, released) = mpsc::channel::<()>();
        let released = std::sync::Arc::new(std::sync::Mutex::new(released));
        let (started_tx, mut started) = tokio::sync::mpsc::unbounded_channel();
        let mut stuck = Vec::new();
        for _ in 0..threads {
            let (released, started_tx) = (released.clone(), started_tx.clone());
            stuck.push(runtime.handle().spawn(async move {
                let name = std::thread::current().name().map(str::to_owned);
                let _ = started_tx.send(name);
                // Blocks the worker thread, as a wasm checker that does not yield would.
                let _ = released.lock().unwrap().recv();
            }));
        }
        for _ in 0..threads {
            let name = started.recv().await.unwrap();
            assert_eq!(name.as_deref(), Some("gongfang-checker"));
        }

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            tokio::io::AsyncWriteExt::write_all(&mut socket, b"OK\n").await.unwrap();
        });
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut answer = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut client, &mut answer).await.unwrap();
        server.await.unwrap();
        assert_eq!(answer, "OK\n");
        assert!(stuck.iter().all(|task| !task.is_finished()), "the checkers were still stuck");

        for _ in 0..threads {
            release.send(()).unwrap();
        }
        for task in stuck {
            task.await.unwrap();
        }
        runtime.shutdown().await;
    }
}
