//! Teams added to a running drill from the console: one team from a form, or hundreds from a
//! CSV file (`POST /api/admin/teams/import`). The teams go where every team of a drill comes
//! from, its scenario file, and the drill starts again with them (a few seconds: the board,
//! the flag submission and the pages come back by themselves, the game resumes from the
//! store). The binary says how, through a [`TeamAdmission`]; a drill that cannot grow (its
//! scenario is not a file it may write, or no process runs it) has none.

use std::future::Future;
use std::pin::Pin;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::admin;
use crate::error::ReportsError;
use crate::state::ReportsState;

/// The largest import the console takes; larger files go through `gongfang team import`.
pub const MAX_IMPORT_BYTES: usize = 1 << 20;

/// The teams added, and how many the drill has now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Admitted {
    /// Their slugs, in the file's order.
    pub added: Vec<String>,
    pub teams: usize,
}

/// Why no team was added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdmissionRefusal {
    /// A row or the grown scenario has problems: every one, with its line; nothing changed.
    Invalid(String),
    /// This drill cannot take teams while it runs; says what to do instead.
    NotHere(String),
}

/// What a [`TeamAdmission`] call answers.
pub type AdmissionFuture<'a> = Pin<Box<dyn Future<Output = Result<Admitted, AdmissionRefusal>> + Send + 'a>>;

/// Adds teams to the running drill.
pub trait TeamAdmission: Send + Sync + 'static {
    /// Adds the teams of `csv` (a header naming the columns, then one team per line, as
    /// `gongfang team import` reads) and has the drill take them: all of them, or none.
    fn admit<'a>(&'a self, csv: &'a str) -> AdmissionFuture<'a>;
}

/// A drill that takes no teams while it runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTeamAdmission;

impl TeamAdmission for NoTeamAdmission {
    fn admit<'a>(&'a self, _csv: &'a str) -> AdmissionFuture<'a> {
        Box::pin(async {
            Err(AdmissionRefusal::NotHere(
                "this drill takes no teams while it runs: add them with `gongfang team import` and start it again"
                    .to_owned(),
            ))
        })
    }
}

/// The teams to add.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImportBody {
    /// The CSV text: `slug,name,name_zh,role,network,id,nop` (`slug` and `name` required).
    csv: String,
}

/// What the console is told.
#[derive(Debug, Serialize)]
pub(crate) struct Imported {
    #[serde(flatten)]
    admitted: Admitted,
    note: &'static str,
}

/// `POST /api/admin/teams/import`: adds the teams of `{"csv": "…"}` to the running drill;
/// every row is checked first and on any problem nothing is added (`400`, every problem with
/// its line). Audited under the organiser (`team.import`, with the slugs added).
pub(crate) async fn import(
    State(state): State<ReportsState>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Json<Imported>, ReportsError> {
    let account = admin::organiser(&state, &headers).await?;
    let ImportBody { csv } = crate::upload::json_body(&headers, body, MAX_IMPORT_BYTES).await.map_err(|e| match e {
        ReportsError::TooLarge { .. } => ReportsError::BadRequest(format!(
            "the console takes at most {MAX_IMPORT_BYTES} bytes of teams at a time: split the file, or add them \
             with `gongfang team import` before the drill"
        )),
        e => e,
    })?;
    let admitted = state.team_admission().admit(&csv).await.map_err(|refusal| match refusal {
        AdmissionRefusal::Invalid(problems) => ReportsError::BadRequest(format!("no team was added: {problems}")),
        AdmissionRefusal::NotHere(why) => ReportsError::WrongState(why),
    })?;
    // The scenario holds the teams by now: the organiser is told even if the audit log
    // cannot be written, or the same file would be sent again and refused as taken.
    let detail = json!({ "teams": admitted.added });
    if let Err(error) = state.store().append_audit(state.now(), &account.actor(), "team.import", &detail).await {
        tracing::error!(teams = ?admitted.added, %error, "teams added to the drill were not audited");
    }
    Ok(Json(Imported {
        admitted,
        note: "the drill starts again with the new teams: the pages come back within seconds; then make each \
               new team's credential pack",
    }))
}
