//! The judges' view of the gateway's translation log: which team's peer really made a
//! connection that a service saw coming from the gateway.

use std::net::Ipv4Addr;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use gongfang_store::{MAX_TRANSLATIONS, TranslationFilter, VpnTranslation};
use serde::Serialize;

use crate::auth;
use crate::error::ReportsError;
use crate::state::ReportsState;

/// Rows answered unless `?limit=` says otherwise.
const DEFAULT_LIMIT: u32 = 100;
/// The parameters `GET /api/judge/translations` takes.
const PARAMETERS: [&str; 5] = ["team", "target", "since", "until", "limit"];

#[derive(Debug, Serialize)]
pub(crate) struct Translations {
    translations: Vec<TranslationView>,
}

#[derive(Debug, Serialize)]
struct TranslationView {
    at: DateTime<Utc>,
    team: TeamRef,
    peer: Ipv4Addr,
    target: Ipv4Addr,
    port: u16,
    seen_as: Ipv4Addr,
}

#[derive(Debug, Serialize)]
struct TeamRef {
    id: u16,
    /// `None` for a team no longer in the scenario.
    slug: Option<String>,
}

/// `GET /api/judge/translations?team=SLUG&target=ADDR&since=RFC3339&until=RFC3339&limit=N`:
/// the newest translations first.
pub(crate) async fn translations(
    State(state): State<ReportsState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    headers: HeaderMap,
) -> Result<axum::Json<Translations>, ReportsError> {
    let judge = auth::judge(&state, &headers).await?;
    let Query(pairs) = query.map_err(|e| ReportsError::BadRequest(format!("unreadable query string: {e}")))?;
    let filter = parse_filter(&state, &pairs)?;
    let rows = state.store().vpn_translations(&filter).await?;
    tracing::info!(judge = %judge.name, rows = rows.len(), "judge read the VPN translation log");
    let scenario = state.scenario();
    let view = |t: VpnTranslation| TranslationView {
        at: t.at,
        team: TeamRef { id: t.team.0, slug: scenario.team(t.team).map(|team| team.slug.clone()) },
        peer: t.peer,
        target: t.target,
        port: t.port,
        seen_as: t.seen_as,
    };
    Ok(axum::Json(Translations { translations: rows.into_iter().map(view).collect() }))
}

fn parse_filter(state: &ReportsState, pairs: &[(String, String)]) -> Result<TranslationFilter, ReportsError> {
    let bad = ReportsError::BadRequest;
    let mut filter = TranslationFilter { limit: DEFAULT_LIMIT, ..TranslationFilter::default() };
    let mut seen: Vec<&str> = Vec::new();
    for (key, value) in pairs {
        if !PARAMETERS.contains(&key.as_str()) {
            return Err(bad(format!("unknown parameter `{key}`; use {}", PARAMETERS.join(", "))));
        }
        if seen.contains(&key.as_str()) {
            return Err(bad(format!("`{key}` is given twice; give it once")));
        }
        seen.push(key);
        match key.as_str() {
            "team" => {
                let team = state.scenario().teams.iter().find(|t| t.slug == *value);
                filter.team = Some(team.map(|t| t.id).ok_or_else(|| ReportsError::UnknownTeam(value.clone()))?);
            }
            "target" => {
                filter.target = Some(value.parse().map_err(|_| {
                    bad(format!("`target={value}` is not an IPv4 address; give a service's address, e.g. 10.60.2.10"))
                })?);
            }
            "since" => filter.since = Some(time(key, value)?),
            "until" => filter.until = Some(time(key, value)?),
            _ => {
                filter.limit =
                    value.parse::<u32>().ok().filter(|n| (1..=MAX_TRANSLATIONS).contains(n)).ok_or_else(|| {
                        bad(format!("`limit={value}` is not a row count; use a number from 1 to {MAX_TRANSLATIONS}"))
                    })?;
            }
        }
    }
    if let (Some(since), Some(until)) = (filter.since, filter.until)
        && since >= until
    {
        return Err(bad(format!("`since` ({since}) must be before `until` ({until})")));
    }
    Ok(filter)
}

fn time(key: &str, value: &str) -> Result<DateTime<Utc>, ReportsError> {
    DateTime::parse_from_rfc3339(value).map(|t| t.with_timezone(&Utc)).map_err(|_| {
        ReportsError::BadRequest(format!(
            "`{key}={value}` is not an RFC 3339 time; write it like 2026-11-30T09:00:00Z (a `+` in an offset \
             must be sent as %2B)"
        ))
    })
}
