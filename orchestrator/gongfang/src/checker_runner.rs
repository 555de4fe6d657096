//! The game engine's [`CheckerRunner`] over the wasm sandbox: one loaded checker per service.

use std::collections::HashMap;

use gongfang_core::ServiceId;
use gongfang_core::scenario::Scenario;
use gongfang_engine::{ActionKind, ActionOutcome, ActionRequest, CheckerRunner};
use gongfang_sandbox::{ActionCtx, Checker, Sandbox, SandboxError, Target};

/// Runs each service's checker component for the engine.
#[derive(Clone)]
pub struct SandboxRunner {
    checkers: HashMap<ServiceId, Checker>,
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
        Ok(SandboxRunner { checkers })
    }
}

impl CheckerRunner for SandboxRunner {
    async fn run(&self, request: ActionRequest) -> ActionOutcome {
        let Some(checker) = self.checkers.get(&request.service) else {
            return ActionOutcome::checker_error(format!("no checker loaded for service {}", request.service));
        };
        let target = Target { ip: request.target.address, ports: request.target.ports.clone() };
        let ctx = ActionCtx { team: request.team, tick: request.tick, seed: request.seed };
        let outcome = match &request.kind {
            ActionKind::Check => checker.check(&target, &ctx).await,
            ActionKind::Put { store, flag } => checker.put(&target, &ctx, *store, flag).await,
            ActionKind::Get { store, flag, state } => checker.get(&target, &ctx, *store, flag, state).await,
        };
        ActionOutcome {
            verdict: outcome.verdict,
            public_message: outcome.public_message,
            private_log: outcome.private_log,
            flag_id: outcome.flag_id,
            state: outcome.state,
        }
    }
}
