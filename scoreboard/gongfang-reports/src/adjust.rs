//! Manual score adjustments from the console: an organiser adds points to a team's total, or
//! takes them away, always with a reason. Each is stored with its account and audited in the
//! same transaction (`score.adjust`); the scoreboard counts it at once.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use gongfang_core::Tick;
use gongfang_core::event::GameEvent;
use gongfang_store::ScoreAdjustment;
use serde::{Deserialize, Serialize};

use crate::admin;
use crate::error::ReportsError;
use crate::state::ReportsState;

type Reply<T> = Result<T, ReportsError>;

/// The most points one adjustment adds or takes.
pub const MAX_ADJUSTMENT: f64 = 100_000.0;
/// Longest reason for an adjustment, in characters.
pub const MAX_ADJUST_REASON_CHARS: usize = 500;

/// An adjustment as an organiser sends it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AdjustBody {
    team: String,
    points: f64,
    reason: String,
}

/// An adjustment as the console lists it.
#[derive(Debug, Serialize)]
pub(crate) struct AdjustmentView {
    id: i64,
    team: String,
    points: f64,
    reason: String,
    /// The latest scored tick when it was made.
    tick: Tick,
    made_by: String,
    made_at: DateTime<Utc>,
}

fn view(state: &ReportsState, a: ScoreAdjustment) -> AdjustmentView {
    AdjustmentView {
        id: a.id,
        team: state.team_slug(a.team),
        points: a.points,
        reason: a.reason,
        tick: a.tick,
        made_by: a.made_by,
        made_at: a.made_at,
    }
}

/// `GET /api/admin/adjustments`: every adjustment, oldest first (organisers and observers).
pub(crate) async fn list(State(state): State<ReportsState>, headers: HeaderMap) -> Reply<Json<Vec<AdjustmentView>>> {
    crate::console::reader(&state, &headers).await?;
    let all = state.store().score_adjustments().await?;
    Ok(Json(all.into_iter().map(|a| view(&state, a)).collect()))
}

/// `POST /api/admin/adjustments`: adds `points` (negative: takes them) to a team's total.
pub(crate) async fn adjust(
    State(state): State<ReportsState>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Reply<(StatusCode, Json<AdjustmentView>)> {
    let account = admin::organiser(&state, &headers).await?;
    let AdjustBody { team, points, reason } = crate::upload::json_body(&headers, body, admin::MAX_BODY).await?;
    let team = admin::team_of_drill(&state, &team)?;
    if !points.is_finite() || points == 0.0 || points.abs() > MAX_ADJUSTMENT {
        return Err(ReportsError::BadRequest(format!(
            "`points` is {points}; give a number other than 0 from -{MAX_ADJUSTMENT} to {MAX_ADJUSTMENT} \
             (negative takes points away)"
        )));
    }
    let reason = admin::bounded("reason", reason.trim(), MAX_ADJUST_REASON_CHARS)?;
    if reason.is_empty() {
        return Err(ReportsError::BadRequest(
            "say why the score changes (`reason`): teams and judges will ask, and the audit log keeps it".to_owned(),
        ));
    }
    let tick = state.store().list_ticks().await?.into_iter().rev().find(|t| t.is_scored()).map_or(Tick(0), |t| t.tick);
    let now = state.now();
    let made = state.store().adjust_score(team.id, points, &reason, tick, &account.actor(), now).await?;
    state.publish(GameEvent::ScoreAdjusted { team: team.id, points });
    Ok((StatusCode::CREATED, Json(view(&state, made))))
}
