//! Organisers' restarts and resets of teams' services (the console's `POST
//! /api/admin/service`), over the drill's container engine.

use std::sync::Arc;

use gongfang_core::scenario::{Scenario, Service, Team};
use gongfang_docker::{Engine, Orchestrator};
use gongfang_reports::{ControlFuture, ServiceControl};

/// Restarts and resets teams' containers as the scenario's plan names them.
#[derive(Debug)]
pub struct ContainerControl {
    orchestrator: Orchestrator<Engine>,
    scenario: Arc<Scenario>,
}

impl ContainerControl {
    pub fn new(orchestrator: Orchestrator<Engine>, scenario: Arc<Scenario>) -> ContainerControl {
        ContainerControl { orchestrator, scenario }
    }
}

impl ServiceControl for ContainerControl {
    fn restart<'a>(&'a self, team: &'a Team, service: &'a Service) -> ControlFuture<'a> {
        Box::pin(async move {
            self.orchestrator.restart(&self.scenario, &team.slug, &service.slug).await.map_err(|e| e.to_string())
        })
    }

    fn reset<'a>(&'a self, team: &'a Team, service: &'a Service) -> ControlFuture<'a> {
        Box::pin(async move {
            self.orchestrator.reset(&self.scenario, &team.slug, &service.slug).await.map_err(|e| e.to_string())
        })
    }
}
