//! Reconcile: make the engine match the plan, whatever state an earlier (possibly killed) run
//! left. Objects are found by the drill label; an object whose config-hash label differs from
//! the plan's is stale and recreated; anything labelled with the drill but not in the plan is
//! removed. Running it twice gives the same containers; teardown removes everything labelled.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use futures::{StreamExt, TryStreamExt, stream};
use gongfang_core::scenario::{ImageSource, Scenario};
use tracing::{info, warn};

use crate::firewall::Firewall;
use crate::plan::{InstanceSpec, Plan, Settings, plan};
use crate::runtime::{Backend, Existing, Runtime};
use crate::{Error, Result, labels};

/// What one reconcile did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Created because they did not exist.
    pub created: Vec<String>,
    /// Removed and created again because they were stale or incomplete.
    pub recreated: Vec<String>,
    /// Kept as they were (and started if they were not running).
    pub adopted: Vec<String>,
    /// Removed because the plan no longer has them.
    pub removed: Vec<String>,
    pub networks_created: Vec<String>,
    pub networks_removed: Vec<String>,
}

/// What a teardown removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Teardown {
    pub containers: usize,
    pub networks: usize,
    pub volumes: usize,
    /// Image tags built for the drill.
    pub images: usize,
    pub firewall: bool,
}

/// Drives a [`Runtime`] to run a scenario's drill.
#[derive(Debug, Clone)]
pub struct Orchestrator<R> {
    runtime: R,
    settings: Settings,
}

impl<R: Runtime> Orchestrator<R> {
    pub fn new(runtime: R, settings: Settings) -> Self {
        Orchestrator { runtime, settings }
    }

    pub fn runtime(&self) -> &R {
        &self.runtime
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn plan(&self, scenario: &Scenario) -> Result<Plan> {
        plan(scenario, &self.settings)
    }

    fn firewall_on(&self) -> bool {
        self.settings.firewall && self.settings.backend == Backend::Docker
    }

    /// Builds every build-folder image and checks every named one; image name -> image id.
    pub async fn images(&self, plan: &Plan) -> Result<HashMap<String, String>> {
        let mut sources: BTreeMap<&str, &ImageSource> = BTreeMap::new();
        for i in &plan.instances {
            sources.entry(&i.image).or_insert(&i.source);
        }
        let mut ids = HashMap::new();
        for (image, source) in sources {
            let id = match source {
                ImageSource::Build(dir) => {
                    let labels = HashMap::from([(labels::DRILL.to_owned(), plan.drill.clone())]);
                    self.runtime.build_image(image, dir, labels).await?
                }
                ImageSource::Image(name) => {
                    self.runtime.image_id(name).await?.ok_or_else(|| Error::ImageMissing(name.clone()))?
                }
            };
            ids.insert(image.to_owned(), id);
        }
        Ok(ids)
    }

    /// Brings the engine to the scenario's plan and returns what changed.
    pub async fn up(&self, scenario: &Scenario) -> Result<Report> {
        let plan = self.plan(scenario)?;
        let images = self.images(&plan).await?;
        self.apply(&plan, &images).await
    }

    /// Reconciles against an already computed plan and image ids.
    pub async fn apply(&self, plan: &Plan, images: &HashMap<String, String>) -> Result<Report> {
        let drill = plan.drill.as_str();
        let mut report = Report::default();
        let existing_nets = self.runtime.list_networks(drill).await?;
        let existing = self.runtime.list(drill).await?;

        // Staging networks are made when a patch is first tried, and kept from then on.
        let wanted_nets: HashMap<&str, String> =
            plan.networks.iter().chain(&plan.staging).map(|n| (n.name.as_str(), n.config_hash())).collect();
        let stale_nets: BTreeSet<String> = existing_nets
            .iter()
            .filter(|n| {
                wanted_nets.get(n.name.as_str())
                    != Some(&n.labels.get(labels::CONFIG_HASH).cloned().unwrap_or_default())
            })
            .map(|n| n.name.clone())
            .collect();

        let wanted: HashMap<&str, (&InstanceSpec, String)> = plan
            .instances
            .iter()
            .map(|i| {
                let id = images.get(&i.image).map(String::as_str).unwrap_or_default();
                (i.name.as_str(), (i, i.config_hash(id)))
            })
            .collect();

        let mut to_remove: Vec<&Existing> = Vec::new();
        let mut to_start: Vec<&str> = Vec::new();
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        for e in &existing {
            let Some((spec, hash)) = wanted.get(e.name.as_str()) else {
                report.removed.push(e.name.clone());
                to_remove.push(e);
                continue;
            };
            let fresh = e.labels.get(labels::CONFIG_HASH) == Some(hash)
                && spec.attachments().all(|a| !stale_nets.contains(&a.network))
                // A run killed between creating a container and joining its second network
                // leaves it incomplete.
                && e.networks.as_ref().is_none_or(|nets| {
                    let want: BTreeSet<&str> = spec.attachments().map(|a| a.network.as_str()).collect();
                    nets.iter().map(String::as_str).collect::<BTreeSet<_>>() == want
                });
            if fresh && seen.insert(e.name.as_str()) {
                report.adopted.push(e.name.clone());
                if !e.running {
                    to_start.push(e.name.as_str());
                }
            } else {
                report.recreated.push(e.name.clone());
                to_remove.push(e);
            }
        }
        let kept: BTreeSet<&str> = report.adopted.iter().map(String::as_str).collect();
        let recreated: BTreeSet<&str> = report.recreated.iter().map(String::as_str).collect();
        let to_create: Vec<(&InstanceSpec, String)> = plan
            .instances
            .iter()
            .filter(|i| !kept.contains(i.name.as_str()))
            .map(|i| {
                if !recreated.contains(i.name.as_str()) {
                    report.created.push(i.name.clone());
                }
                (i, images.get(&i.image).cloned().unwrap_or_default())
            })
            .collect();

        let n = self.settings.concurrency.max(1);
        let mut removals = Vec::new();
        for e in &to_remove {
            removals.push(self.runtime.remove(&e.name));
        }
        all(removals, n).await?;
        for name in &stale_nets {
            self.runtime.remove_network(name).await?;
            report.networks_removed.push(name.clone());
        }
        let present: BTreeSet<&str> =
            existing_nets.iter().map(|n| n.name.as_str()).filter(|n| !stale_nets.contains(*n)).collect();
        for net in &plan.networks {
            if !present.contains(net.name.as_str()) {
                self.runtime.create_network(drill, net).await?;
                report.networks_created.push(net.name.clone());
            }
        }
        if self.firewall_on() {
            Firewall::new(drill).apply(plan.bridges()).await?;
        }
        let mut starts = Vec::new();
        for name in &to_start {
            starts.push(self.runtime.start(name));
        }
        all(starts, n).await?;
        let mut creations = Vec::new();
        for (spec, id) in &to_create {
            creations.push(async move {
                self.runtime.create(drill, spec, id).await?;
                self.runtime.start(&spec.name).await
            });
        }
        all(creations, n).await?;
        info!(
            drill,
            created = report.created.len(),
            recreated = report.recreated.len(),
            adopted = report.adopted.len(),
            removed = report.removed.len(),
            "reconciled"
        );
        Ok(report)
    }

    /// A fresh copy of one team's service (app and sidecars) from its image: the team's
    /// changes and data are gone, its code and data volumes too (made again from the image).
    pub async fn reset(&self, scenario: &Scenario, team: &str, service: &str) -> Result<Vec<String>> {
        let plan = self.plan(scenario)?;
        let specs: Vec<&InstanceSpec> =
            plan.instances.iter().filter(|i| i.team == team && i.service == service).collect();
        if specs.is_empty() {
            return Err(Error::NotFound(format!("{team}/{service}")));
        }
        let mut images = HashMap::new();
        for s in &specs {
            let id = self.runtime.image_id(&s.image).await?.ok_or_else(|| Error::ImageMissing(s.image.clone()))?;
            images.insert(s.image.clone(), id);
        }
        for s in &specs {
            self.runtime.remove(&s.name).await?;
            for volume in &s.volumes {
                self.runtime.remove_volume(&volume.name).await?;
            }
            self.runtime.reset(&plan.drill, s, &images[&s.image]).await?;
        }
        info!(drill = plan.drill, team, service, "service reset");
        Ok(specs.iter().map(|s| s.name.clone()).collect())
    }

    /// Restarts one team's service (app and sidecars) as it is: its changes and data stay.
    pub async fn restart(&self, scenario: &Scenario, team: &str, service: &str) -> Result<Vec<String>> {
        let plan = self.plan(scenario)?;
        let names: Vec<String> =
            plan.instances.iter().filter(|i| i.team == team && i.service == service).map(|i| i.name.clone()).collect();
        if names.is_empty() {
            return Err(Error::NotFound(format!("{team}/{service}")));
        }
        for name in &names {
            self.runtime.restart(name).await?;
        }
        info!(drill = plan.drill, team, service, "service restarted");
        Ok(names)
    }

    /// Runs `image` (a tag on the engine) as the team's staged instance, on the team's staging
    /// network (made first if missing); a staged instance left from before is replaced.
    /// Returns the instance, whose game attachment says where it answers.
    pub async fn stage(&self, plan: &Plan, team: &str, service: &str, image: &str) -> Result<InstanceSpec> {
        let (network, spec) = plan.staging(team, service, image)?;
        let id = self.runtime.image_id(image).await?.ok_or_else(|| Error::ImageMissing(image.to_owned()))?;
        // Made once: the engine refuses a second network on the same addresses.
        if !self.runtime.list_networks(&plan.drill).await?.iter().any(|n| n.name == network.name) {
            self.runtime.create_network(&plan.drill, &network).await?;
        }
        self.runtime.reset(&plan.drill, &spec, &id).await?;
        info!(drill = plan.drill, team, service, image, "staged");
        Ok(spec)
    }

    /// Removes a staged instance (see [`Orchestrator::stage`]); a missing one is not an error.
    pub async fn unstage(&self, spec: &InstanceSpec) -> Result<()> {
        self.runtime.remove(&spec.name).await
    }

    /// Runs `image` (a tag on the engine) as the team's live service: its container is made
    /// again from it, at the same address, with the team's own volumes, so its data stays.
    pub async fn deploy(&self, plan: &Plan, team: &str, service: &str, image: &str) -> Result<()> {
        let mut plan = plan.clone();
        plan.use_image(team, service, image)?;
        let spec = plan.instance(team, service).expect("use_image found it");
        let id = self.runtime.image_id(image).await?.ok_or_else(|| Error::ImageMissing(image.to_owned()))?;
        self.runtime.reset(&plan.drill, spec, &id).await?;
        info!(drill = plan.drill, team, service, image, "deployed");
        Ok(())
    }

    /// Removes every container (or service), network, volume and built image labelled with
    /// `drill`, and its firewall rules.
    pub async fn down(&self, drill: &str) -> Result<Teardown> {
        let mut t = Teardown::default();
        let existing = self.runtime.list(drill).await?;
        let n = self.settings.concurrency.max(1);
        let mut removals = Vec::new();
        for e in &existing {
            removals.push(self.runtime.remove(&e.name));
        }
        all(removals, n).await?;
        t.containers = existing.len();
        for net in self.runtime.list_networks(drill).await? {
            self.runtime.remove_network(&net.name).await?;
            t.networks += 1;
        }
        t.volumes = self.runtime.remove_volumes(drill).await?;
        // Images are a cache, not drill state: one still in use elsewhere must not fail teardown.
        t.images = match self.runtime.remove_images(drill).await {
            Ok(n) => n,
            Err(e) => {
                warn!(drill, error = %e, "cannot remove the drill's images");
                0
            }
        };
        let fw = Firewall::new(drill);
        match fw.installed().await {
            Ok(true) => {
                fw.remove().await?;
                t.firewall = true;
            }
            Ok(false) => {}
            // No iptables here: there were no rules to remove either.
            Err(e) => warn!(error = %e, "cannot check firewall rules"),
        }
        info!(drill, containers = t.containers, networks = t.networks, volumes = t.volumes, "drill torn down");
        Ok(t)
    }
}

/// Runs `futures` with at most `n` at a time; the first error wins.
async fn all<F: std::future::Future<Output = Result<()>>>(futures: Vec<F>, n: usize) -> Result<()> {
    stream::iter(futures).buffer_unordered(n).try_collect::<Vec<()>>().await.map(drop)
}
