//! Submitted patches: the queue, each patch's bytes and verdict, the build folders patches
//! make (content-addressed per service), the versions each team's service has run, and the
//! ticks a team's services were seen defended.

use chrono::{DateTime, Utc};
use gongfang_core::patch::{DeployCause, Deployment, NewPatch, PatchKind, PatchRecord, PatchStatus};
use gongfang_core::scenario::PatchRules;
use gongfang_core::{Exposure, ServiceId, TeamId, Tick};
use sea_orm::ActiveValue::Set;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use sha2::{Digest, Sha256};

use crate::Store;
use crate::entity::{audit_log, teams};
use crate::error::{Result, StoreError, corrupt};
use crate::rows::{de, tick_i32};

pub(crate) mod entity {
    #![allow(missing_debug_implementations)]

    pub mod patches {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "patches")]
        pub struct Model {
            #[sea_orm(primary_key)]
            pub id: i32,
            pub team: i32,
            pub service: i32,
            pub version: i32,
            pub kind: String,
            pub sha256: String,
            pub size: i64,
            pub body: Vec<u8>,
            /// The SHA-256 of the build folder the patch made, once applied.
            pub source: Option<String>,
            pub status: String,
            pub message: String,
            /// The checker's public messages, as a JSON array of strings.
            pub checks: String,
            pub exploit: Option<String>,
            pub submitted_at: DateTimeUtc,
            pub decided_at: Option<DateTimeUtc>,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }

    pub mod patch_sources {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "patch_sources")]
        pub struct Model {
            #[sea_orm(primary_key)]
            pub id: i32,
            pub sha256: String,
            pub service: i32,
            /// The organisers' build folder (version 0), as it was when stored.
            pub base: bool,
            /// The build folder as a tar archive.
            pub archive: Vec<u8>,
            pub added_at: DateTimeUtc,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }

    pub mod deployments {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "deployments")]
        pub struct Model {
            #[sea_orm(primary_key)]
            pub id: i32,
            pub team: i32,
            pub service: i32,
            pub version: i32,
            pub patch: Option<i32>,
            pub cause: String,
            pub at: DateTimeUtc,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }
}

use entity::{deployments, patch_sources, patches};

/// Why [`Store::submit_patch`] took no patch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatchRefused {
    /// The team already has this many patches waiting.
    QueueFull(u32),
    /// The team has sent this many patches over the drill, the most it may.
    TeamLimit(u32),
    /// A rollback named a version this team's service never ran.
    NoSuchVersion(u32),
}

/// What [`Store::set_patch_outcome`] writes: where the patch is now and what the team is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchOutcome {
    pub status: PatchStatus,
    pub message: String,
    pub checks: Vec<String>,
    pub exploit: Option<Exposure>,
}

fn record_from_row(r: patches::Model) -> Result<PatchRecord> {
    let id = r.id;
    let checks: Vec<String> =
        serde_json::from_str(&r.checks).map_err(|e| corrupt("patches", id, format!("checks: {e}")))?;
    Ok(PatchRecord {
        id: i64::from(id),
        team: TeamId(de("patches", id, "team", r.team)?),
        service: ServiceId(de("patches", id, "service", r.service)?),
        version: de("patches", id, "version", r.version)?,
        kind: PatchKind::from_name(&r.kind).ok_or_else(|| corrupt("patches", id, format!("kind `{}`", r.kind)))?,
        sha256: r.sha256,
        size: u64::try_from(r.size).map_err(|_| corrupt("patches", id, "negative size"))?,
        status: PatchStatus::from_name(&r.status)
            .ok_or_else(|| corrupt("patches", id, format!("status `{}`", r.status)))?,
        message: r.message,
        checks,
        exploit: r
            .exploit
            .map(|e| Exposure::from_name(&e).ok_or_else(|| corrupt("patches", id, format!("exploit `{e}`"))))
            .transpose()?,
        submitted_at: r.submitted_at,
        decided_at: r.decided_at,
    })
}

fn deployment_from_row(r: deployments::Model) -> Result<Deployment> {
    let id = r.id;
    Ok(Deployment {
        team: TeamId(de("deployments", id, "team", r.team)?),
        service: ServiceId(de("deployments", id, "service", r.service)?),
        version: de("deployments", id, "version", r.version)?,
        patch: r.patch.map(i64::from),
        cause: DeployCause::from_name(&r.cause)
            .ok_or_else(|| corrupt("deployments", id, format!("cause `{}`", r.cause)))?,
        at: r.at,
    })
}

fn hex_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn row_id(id: i64) -> i32 {
    i32::try_from(id).unwrap_or(i32::MAX)
}

impl Store {
    /// Takes a team's patch into the queue: numbers it (the next version of the team's service;
    /// a rollback carries the version it goes back to), stores its bytes and hash, and audits
    /// it under `team SLUG`, all in one transaction.
    pub async fn submit_patch(
        &self,
        patch: &NewPatch,
        rules: &PatchRules,
        at: DateTime<Utc>,
    ) -> Result<std::result::Result<PatchRecord, PatchRefused>> {
        let txn = self.write_txn().await?;
        let (team, service) = (i32::from(patch.team.0), i32::from(patch.service.0));
        // The team's row is the lock that numbers its patches and counts its limits: two
        // submissions at once take turns (SQLite's write transaction already serialises them).
        let mut row = teams::Entity::find_by_id(team);
        if self.backend == crate::Backend::Postgres {
            row = row.lock_exclusive();
        }
        let slug =
            row.one(&txn).await?.map(|t| t.slug).ok_or_else(|| StoreError::UnknownTeam(patch.team.to_string()))?;
        let sent = patches::Entity::find().filter(patches::Column::Team.eq(team)).count(&txn).await?;
        if sent >= u64::from(rules.max_per_team) {
            return Ok(Err(PatchRefused::TeamLimit(rules.max_per_team)));
        }
        let waiting = patches::Entity::find()
            .filter(patches::Column::Team.eq(team))
            .filter(patches::Column::Status.eq(PatchStatus::Queued.as_str()))
            .count(&txn)
            .await?;
        if waiting >= u64::from(rules.max_queued) {
            return Ok(Err(PatchRefused::QueueFull(rules.max_queued)));
        }
        let ours =
            patches::Entity::find().filter(patches::Column::Team.eq(team)).filter(patches::Column::Service.eq(service));
        let version = match (patch.kind, patch.target) {
            (PatchKind::Rollback, Some(target)) => {
                let ran = target == 0
                    || deployments::Entity::find()
                        .filter(deployments::Column::Team.eq(team))
                        .filter(deployments::Column::Service.eq(service))
                        .filter(deployments::Column::Version.eq(i32::try_from(target).unwrap_or(i32::MAX)))
                        .count(&txn)
                        .await?
                        > 0;
                if !ran {
                    return Ok(Err(PatchRefused::NoSuchVersion(target)));
                }
                target
            }
            _ => {
                let last = ours
                    .filter(patches::Column::Kind.ne(PatchKind::Rollback.as_str()))
                    .order_by_desc(patches::Column::Version)
                    .one(&txn)
                    .await?
                    .map_or(0, |r| r.version);
                u32::try_from(last).unwrap_or(0) + 1
            }
        };
        let sha256 = hex_sha256(&patch.body);
        let row = patches::ActiveModel {
            team: Set(team),
            service: Set(service),
            version: Set(i32::try_from(version).unwrap_or(i32::MAX)),
            kind: Set(patch.kind.as_str().to_owned()),
            sha256: Set(sha256.clone()),
            size: Set(i64::try_from(patch.body.len()).unwrap_or(i64::MAX)),
            body: Set(patch.body.clone()),
            source: Set(None),
            status: Set(PatchStatus::Queued.as_str().to_owned()),
            message: Set("waiting for a build slot".to_owned()),
            checks: Set("[]".to_owned()),
            exploit: Set(None),
            submitted_at: Set(at),
            decided_at: Set(None),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        let detail = serde_json::json!({
            "patch": row.id,
            "service": patch.service.0,
            "version": version,
            "kind": patch.kind.as_str(),
            "sha256": sha256,
            "size": patch.body.len(),
        });
        audit_log::ActiveModel {
            at: Set(at),
            actor: Set(format!("team {slug}")),
            action: Set(if patch.kind == PatchKind::Rollback { "patch.rollback" } else { "patch.submit" }.to_owned()),
            detail: Set(detail.to_string()),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        Ok(Ok(record_from_row(row)?))
    }

    /// One patch, without its bytes.
    pub async fn patch(&self, id: i64) -> Result<Option<PatchRecord>> {
        patches::Entity::find_by_id(row_id(id)).one(&self.db).await?.map(record_from_row).transpose()
    }

    /// The bytes a team sent.
    pub async fn patch_body(&self, id: i64) -> Result<Option<Vec<u8>>> {
        Ok(patches::Entity::find_by_id(row_id(id)).one(&self.db).await?.map(|r| r.body))
    }

    /// A team's patches, optionally of one service, newest first, at most `limit`.
    pub async fn patches_of(&self, team: TeamId, service: Option<ServiceId>, limit: u64) -> Result<Vec<PatchRecord>> {
        let mut query = patches::Entity::find().filter(patches::Column::Team.eq(i32::from(team.0)));
        if let Some(service) = service {
            query = query.filter(patches::Column::Service.eq(i32::from(service.0)));
        }
        query
            .order_by_desc(patches::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(record_from_row)
            .collect()
    }

    /// Where a queued patch stands: 1 for the next to start.
    pub async fn queue_position(&self, id: i64) -> Result<u64> {
        Ok(patches::Entity::find()
            .filter(patches::Column::Status.eq(PatchStatus::Queued.as_str()))
            .filter(patches::Column::Id.lte(row_id(id)))
            .count(&self.db)
            .await?)
    }

    /// The oldest queued patch of each team not in `busy`, oldest first.
    pub async fn queue_heads(&self, busy: &[TeamId]) -> Result<Vec<PatchRecord>> {
        let busy: Vec<i32> = busy.iter().map(|t| i32::from(t.0)).collect();
        let mut query = patches::Entity::find().filter(patches::Column::Status.eq(PatchStatus::Queued.as_str()));
        if !busy.is_empty() {
            query = query.filter(patches::Column::Team.is_not_in(busy));
        }
        let mut seen = std::collections::HashSet::new();
        let mut heads = Vec::new();
        // Each team has at most `max_queued` waiting, so the queue is small.
        for row in query.order_by_asc(patches::Column::Id).all(&self.db).await? {
            if seen.insert(row.team) {
                heads.push(record_from_row(row)?);
            }
        }
        Ok(heads)
    }

    /// Moves a patch on: its status, the message the team reads, the checker's messages and
    /// what the reference exploit did. A decided status stamps the decision's time.
    pub async fn set_patch_outcome(&self, id: i64, outcome: &PatchOutcome, at: DateTime<Utc>) -> Result<()> {
        let row = patches::Entity::find_by_id(row_id(id)).one(&self.db).await?.ok_or_else(|| StoreError::Corrupt {
            table: "patches",
            key: id.to_string(),
            detail: "gone".into(),
        })?;
        let mut row: patches::ActiveModel = row.into();
        row.status = Set(outcome.status.as_str().to_owned());
        row.message = Set(outcome.message.clone());
        row.checks = Set(serde_json::to_string(&outcome.checks).expect("strings serialise"));
        row.exploit = Set(outcome.exploit.map(|e| e.as_str().to_owned()));
        row.decided_at = Set(outcome.status.is_decided().then_some(at));
        row.update(&self.db).await?;
        Ok(())
    }

    /// Notes the build folder a patch made (see [`Store::put_source`]).
    pub async fn set_patch_source(&self, id: i64, sha256: &str) -> Result<()> {
        patches::Entity::update_many()
            .col_expr(patches::Column::Source, sea_orm::sea_query::Expr::value(sha256.to_owned()))
            .filter(patches::Column::Id.eq(row_id(id)))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Puts patches a stopped platform left half-way back in the queue; returns how many.
    pub async fn requeue_unfinished_patches(&self) -> Result<u64> {
        let done = patches::Entity::update_many()
            .col_expr(patches::Column::Status, sea_orm::sea_query::Expr::value(PatchStatus::Queued.as_str()))
            .col_expr(
                patches::Column::Message,
                sea_orm::sea_query::Expr::value("the platform restarted; waiting for a build slot again"),
            )
            .filter(patches::Column::Status.is_in([PatchStatus::Building.as_str(), PatchStatus::Staging.as_str()]))
            .exec(&self.db)
            .await?;
        Ok(done.rows_affected)
    }

    /// Stores a service's build folder as a tar archive, once per content; returns its
    /// SHA-256. `base`: the organisers' own (version 0).
    pub async fn put_source(
        &self,
        service: ServiceId,
        archive: &[u8],
        base: bool,
        at: DateTime<Utc>,
    ) -> Result<String> {
        let sha256 = hex_sha256(archive);
        let service = i32::from(service.0);
        let row = patch_sources::ActiveModel {
            sha256: Set(sha256.clone()),
            service: Set(service),
            base: Set(base),
            archive: Set(archive.to_vec()),
            added_at: Set(at),
            ..Default::default()
        };
        // The same folder twice (two teams sent the same fix) is stored once.
        let conflict =
            sea_orm::sea_query::OnConflict::columns([patch_sources::Column::Service, patch_sources::Column::Sha256])
                .do_nothing()
                .to_owned();
        let inserted =
            patch_sources::Entity::insert(row).on_conflict(conflict).exec_without_returning(&self.db).await?;
        if base && inserted == 0 {
            // The organisers' folder again: as the base it is the newest base.
            patch_sources::Entity::update_many()
                .col_expr(patch_sources::Column::Base, sea_orm::sea_query::Expr::value(true))
                .col_expr(patch_sources::Column::AddedAt, sea_orm::sea_query::Expr::value(at))
                .filter(patch_sources::Column::Service.eq(service))
                .filter(patch_sources::Column::Sha256.eq(&sha256))
                .exec(&self.db)
                .await?;
        }
        Ok(sha256)
    }

    /// A stored build folder (tar archive) by its SHA-256.
    pub async fn source(&self, service: ServiceId, sha256: &str) -> Result<Option<Vec<u8>>> {
        Ok(patch_sources::Entity::find()
            .filter(patch_sources::Column::Service.eq(i32::from(service.0)))
            .filter(patch_sources::Column::Sha256.eq(sha256))
            .one(&self.db)
            .await?
            .map(|r| r.archive))
    }

    /// The SHA-256 of the build folder version `version` of a team's service is made from:
    /// the newest base for version 0, else the folder the patch of that version made.
    pub async fn version_source(&self, team: TeamId, service: ServiceId, version: u32) -> Result<Option<String>> {
        if version == 0 {
            return Ok(patch_sources::Entity::find()
                .filter(patch_sources::Column::Service.eq(i32::from(service.0)))
                .filter(patch_sources::Column::Base.eq(true))
                .order_by_desc(patch_sources::Column::AddedAt)
                .one(&self.db)
                .await?
                .map(|r| r.sha256));
        }
        Ok(patches::Entity::find()
            .filter(patches::Column::Team.eq(i32::from(team.0)))
            .filter(patches::Column::Service.eq(i32::from(service.0)))
            .filter(patches::Column::Version.eq(i32::try_from(version).unwrap_or(i32::MAX)))
            .filter(patches::Column::Kind.ne(PatchKind::Rollback.as_str()))
            .filter(patches::Column::Source.is_not_null())
            .one(&self.db)
            .await?
            .and_then(|r| r.source))
    }

    /// Records that a team's service now runs `version`, with an audit line under `actor`,
    /// in one transaction.
    pub async fn record_deployment(&self, deployment: &Deployment, actor: &str) -> Result<()> {
        let txn = self.write_txn().await?;
        deployments::ActiveModel {
            team: Set(i32::from(deployment.team.0)),
            service: Set(i32::from(deployment.service.0)),
            version: Set(i32::try_from(deployment.version).unwrap_or(i32::MAX)),
            patch: Set(deployment.patch.map(row_id)),
            cause: Set(deployment.cause.as_str().to_owned()),
            at: Set(deployment.at),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        let detail = serde_json::json!({
            "team": deployment.team.0,
            "service": deployment.service.0,
            "version": deployment.version,
            "patch": deployment.patch,
            "cause": deployment.cause.as_str(),
        });
        audit_log::ActiveModel {
            at: Set(deployment.at),
            actor: Set(actor.to_owned()),
            action: Set("patch.deploy".to_owned()),
            detail: Set(detail.to_string()),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        Ok(())
    }

    /// The versions a team's service ran, oldest first.
    pub async fn deployments_of(&self, team: TeamId, service: ServiceId) -> Result<Vec<Deployment>> {
        deployments::Entity::find()
            .filter(deployments::Column::Team.eq(i32::from(team.0)))
            .filter(deployments::Column::Service.eq(i32::from(service.0)))
            .order_by_asc(deployments::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(deployment_from_row)
            .collect()
    }

    /// The version each team's service runs now, where it is not the organisers' own
    /// (version 0 after a rollback to it is listed too).
    pub async fn current_deployments(&self) -> Result<Vec<Deployment>> {
        let mut latest: std::collections::BTreeMap<(i32, i32), deployments::Model> = Default::default();
        for row in deployments::Entity::find().order_by_asc(deployments::Column::Id).all(&self.db).await? {
            latest.insert((row.team, row.service), row);
        }
        latest.into_values().map(deployment_from_row).collect()
    }

    /// The cells (tick, team, service) of ticks `from..=to` that were defended: every exploit
    /// replay of the tick `not-exploitable`, every checker result `ok`. The same rule as
    /// [`gongfang_core::patch::defended_cells`], counted by the database.
    pub async fn defended_cells(&self, from: Tick, to: Tick) -> Result<Vec<(Tick, TeamId, ServiceId)>> {
        let sql = format!(
            "SELECT r.tick AS tick, r.team AS team, r.service AS service FROM exploit_replays r \
             WHERE r.tick BETWEEN {from} AND {to} \
             GROUP BY r.tick, r.team, r.service \
             HAVING SUM(CASE WHEN r.exposure = 'not-exploitable' THEN 0 ELSE 1 END) = 0 \
             AND EXISTS (SELECT 1 FROM check_results c WHERE c.tick = r.tick AND c.team = r.team \
                         AND c.service = r.service) \
             AND NOT EXISTS (SELECT 1 FROM check_results c WHERE c.tick = r.tick AND c.team = r.team \
                             AND c.service = r.service AND c.verdict <> 'ok') \
             ORDER BY r.tick, r.team, r.service",
            from = tick_i32(from),
            to = tick_i32(to)
        );
        let statement = sea_orm::Statement::from_string(self.db.get_database_backend(), sql);
        let mut cells = Vec::new();
        for row in sea_orm::ConnectionTrait::query_all_raw(&self.db, statement).await? {
            let (tick, team, service): (i32, i32, i32) =
                (row.try_get("", "tick")?, row.try_get("", "team")?, row.try_get("", "service")?);
            cells.push((
                Tick(de("exploit_replays", tick, "tick", tick)?),
                TeamId(de("exploit_replays", tick, "team", team)?),
                ServiceId(de("exploit_replays", tick, "service", service)?),
            ));
        }
        Ok(cells)
    }
}
