//! Submitted patches: what a defending team sends to change its service's code, the steps the
//! platform takes it through (queue, build, staging, deployment), the versions a team's
//! service runs, and what the exploit replay earns a team that patched.

use chrono::{DateTime, Utc};

use crate::ids::{ServiceId, TeamId, Tick};
use crate::replay::{ExploitReplay, Exposure};
use crate::verdict::Verdict;

crate::named_enum! {
    /// What a team sent.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum PatchKind {
        /// A unified diff against the build folder the team's service runs now.
        Diff = "diff",
        /// A tar archive (plain or gzip) whose files overlay that build folder.
        Tar = "tar",
        /// No code: a request to run an earlier version again.
        Rollback = "rollback",
    }
}

crate::named_enum! {
    /// Where a patch is on its way to the team's live service.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum PatchStatus {
        /// Waiting for a build slot.
        Queued = "queued",
        /// Applied to the source; its image is being built.
        Building = "building",
        /// Its image runs on a network of its own while the checker tries it.
        Staging = "staging",
        /// The team's live service runs it.
        Deployed = "deployed",
        /// Not deployed, for the reason in its message; the live service never saw it.
        Refused = "refused",
        /// Was deployed, then the live checker found the service answering wrongly and the
        /// version before it runs again.
        RolledBack = "rolled-back",
        /// The platform could not finish with it (not the team's fault); it may be sent again.
        Failed = "failed",
    }
}

impl PatchStatus {
    /// Whether the patch is done with: nothing more happens to it unless it is rolled back.
    pub fn is_decided(self) -> bool {
        !matches!(self, PatchStatus::Queued | PatchStatus::Building | PatchStatus::Staging)
    }
}

crate::named_enum! {
    /// Why a team's service changed version.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum DeployCause {
        /// A patch passed its checks.
        Patch = "patch",
        /// The team asked for an earlier version.
        Rollback = "rollback",
        /// The live checker found the new version answering wrongly (`mumble`) right after it
        /// was deployed.
        AutoRollback = "auto-rollback",
        /// The platform started again without the image of the version the service ran, and
        /// runs the organisers' own.
        Restart = "restart",
    }
}

/// A patch as the store keeps it (without its bytes).
#[derive(Debug, Clone, PartialEq)]
pub struct PatchRecord {
    pub id: i64,
    pub team: TeamId,
    pub service: ServiceId,
    /// The version this patch makes (1, 2, …: version 0 is the organisers' own); for a
    /// rollback, the version it goes back to.
    pub version: u32,
    pub kind: PatchKind,
    /// SHA-256 of the bytes sent, in hex.
    pub sha256: String,
    pub size: u64,
    pub status: PatchStatus,
    /// The verdict in a sentence: why it was refused, or what deploying it did.
    pub message: String,
    /// The checker's public messages from staging, one per action that said something.
    pub checks: Vec<String>,
    /// What the reference exploit did to the staged instance, when the checker has one.
    pub exploit: Option<Exposure>,
    pub submitted_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
}

/// A patch a team sends, before the store numbers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPatch {
    pub team: TeamId,
    pub service: ServiceId,
    pub kind: PatchKind,
    pub body: Vec<u8>,
    /// For a rollback, the version to run again.
    pub target: Option<u32>,
}

/// One change of the version a team's service runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    pub team: TeamId,
    pub service: ServiceId,
    pub version: u32,
    /// The patch (or rollback request) that caused it; `None` for an automatic rollback.
    pub patch: Option<i64>,
    pub cause: DeployCause,
    pub at: DateTime<Utc>,
}

/// Whether `path` names something inside a folder: relative, with no empty, `.` or `..`
/// part, no backslash or control character. What a patch may touch, and a scenario's `fixed`.
pub fn inside_folder(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && path.split('/').all(|part| !part.is_empty() && part != "." && part != "..")
        && !path.chars().any(|c| c.is_control() || c == '\\')
}

/// The cells (tick, team, service) that a tick's exploit replays and final verdicts show
/// defended: the checker found the service `ok` and every replay of its reference exploit that
/// tick captured nothing. A cell without replays, or with any `unknown` one, is not defended:
/// nothing is known, and a service that is down is never patched.
pub fn defended_cells(
    replays: &[ExploitReplay],
    verdicts: &[(Tick, TeamId, ServiceId, Verdict)],
) -> Vec<(Tick, TeamId, ServiceId)> {
    use std::collections::BTreeMap;
    let mut cells: BTreeMap<(Tick, TeamId, ServiceId), bool> = BTreeMap::new();
    for r in replays {
        let all_clear = cells.entry((r.tick, r.team, r.service)).or_insert(true);
        *all_clear &= r.exposure == Exposure::NotExploitable;
    }
    let ok: std::collections::BTreeSet<(Tick, TeamId, ServiceId)> =
        verdicts.iter().filter(|v| v.3 == Verdict::Ok).map(|v| (v.0, v.1, v.2)).collect();
    cells.into_iter().filter(|(cell, clear)| *clear && ok.contains(cell)).map(|(cell, _)| cell).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::StoreIdx;

    fn replay(tick: u32, team: u16, store: u8, exposure: Exposure) -> ExploitReplay {
        ExploitReplay {
            tick: Tick(tick),
            team: TeamId(team),
            service: ServiceId(1),
            store: StoreIdx(store),
            exposure,
            message: String::new(),
            recorded_at: DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_cell_is_defended_only_when_every_store_held_and_the_service_was_ok() {
        use Exposure::*;
        let replays = [
            // Team 1, tick 3: both stores held, service ok: defended.
            replay(3, 1, 0, NotExploitable),
            replay(3, 1, 1, NotExploitable),
            // Team 2, tick 3: one store fell.
            replay(3, 2, 0, NotExploitable),
            replay(3, 2, 1, Exploitable),
            // Team 1, tick 4: held, but the service answered wrongly.
            replay(4, 1, 0, NotExploitable),
            // Team 3, tick 4: the exploit could not tell.
            replay(4, 3, 0, Unknown),
        ];
        let s = ServiceId(1);
        let verdicts = [
            (Tick(3), TeamId(1), s, Verdict::Ok),
            (Tick(3), TeamId(2), s, Verdict::Ok),
            (Tick(4), TeamId(1), s, Verdict::Mumble),
            (Tick(4), TeamId(3), s, Verdict::Ok),
            // Ok without any replay: nothing known.
            (Tick(5), TeamId(1), s, Verdict::Ok),
        ];
        assert_eq!(defended_cells(&replays, &verdicts), vec![(Tick(3), TeamId(1), s)]);
    }

    #[test]
    fn only_queued_building_and_staging_patches_are_undecided() {
        let undecided: Vec<_> = PatchStatus::ALL.iter().filter(|s| !s.is_decided()).collect();
        assert_eq!(undecided, [&PatchStatus::Queued, &PatchStatus::Building, &PatchStatus::Staging]);
        assert_eq!(PatchKind::from_name("tar"), Some(PatchKind::Tar));
        assert_eq!(DeployCause::AutoRollback.as_str(), "auto-rollback");
    }
}
