//! The game engine's [`CheckerRunner`] over the wasm sandbox: one loaded checker per service.

use std::collections::HashMap;

use gongfang_core::scenario::Scenario;
use gongfang_core::{Action, ActionOutcome, CheckerFault, ServiceId};
use gongfang_engine::{ActionRequest, CheckerRunner};
use gongfang_sandbox::{Checker, Sandbox, SandboxError};

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
        let platform = |message: String| {
            ActionOutcome::checker_error(request.action, CheckerFault::Platform { message }, Vec::new())
        };
        let Some(checker) = self.checkers.get(&request.service) else {
            return platform(format!("no checker loaded for service {}", request.service));
        };
        let (target, ctx) = (&request.target, &request.ctx);
        match (request.action, &request.flag) {
            (Action::Check, _) => checker.check(target, ctx).await,
            (Action::Put, Some(f)) => checker.put(target, ctx, f.store, &f.flag).await,
            (Action::Get, Some(f)) => checker.get(target, ctx, f.store, &f.flag, &f.state).await,
            (action, _) => platform(format!("the engine asked for `{action}` without the flag it needs")),
        }
    }
}
