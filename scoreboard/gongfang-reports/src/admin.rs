//! The organisers' live API on the running drill: read its state, pause and resume it, move
//! its end later, post announcements. `gongfang pause|resume|announce` use it, and so will the console.
//!
//! A caller authenticates with its account's own API token (`Authorization: Bearer gfo_…`,
//! issued by `gongfang account token`). Organisers change things; observers may only read.
//! Every change is audited under the token's account (`account NAME`), never a name the caller
//! chose. A pause is set in the store, which tells the engine in the same step: no checker
//! action is dispatched after the answer.
//!
//! Announcements are public: each new one goes out on the live feed as
//! [`GameEvent::Announcement`], and the scoreboard lists the latest at `GET /api/announcements`.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::{Json, body::Body};
use chrono::{DateTime, Utc};
use gongfang_core::AccountRole;
use gongfang_core::event::GameEvent;
use gongfang_core::report::drill_end;
use gongfang_store::{Account, Announcement, AnnouncementText, SessionHolder};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth;
use crate::error::ReportsError;
use crate::state::ReportsState;
use crate::upload::json_body;

/// Largest body of an admin request (an announcement in two languages fits many times over).
pub(crate) const MAX_BODY: usize = 64 << 10;
/// Longest announcement title, in characters, per language.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest announcement body, in characters, per language.
pub const MAX_BODY_CHARS: usize = 4000;
/// Longest reason for a pause or resume, in characters.
pub const MAX_REASON_CHARS: usize = 500;

type Reply<T> = Result<T, ReportsError>;

/// The account whose API token the request carries (or, without one, whose console session
/// its cookie is), under the shared back-off; a wrong token is answered 401 and counted.
pub(crate) async fn account(state: &ReportsState, headers: &HeaderMap) -> Reply<Account> {
    let Some(token) = auth::session_token(headers)? else {
        // The console: the account's browser session (its changes CSRF-checked by the router).
        return match crate::session::holder(state, headers).await? {
            Some(SessionHolder::Account(account)) => Ok(account),
            Some(SessionHolder::Team(_)) => Err(ReportsError::OrganisersOnly { role: "team" }),
            None => Err(ReportsError::NoApiToken),
        };
    };
    let ip = auth::peer();
    auth::not_backed_off(state, ip, None)?;
    match state.store().api_token_account(token).await? {
        Some(account) => Ok(account),
        None => {
            state.backoff().failed(ip, None, Instant::now());
            Err(ReportsError::BadApiToken)
        }
    }
}

/// The calling organiser; observers and judges are refused.
pub(crate) async fn organiser(state: &ReportsState, headers: &HeaderMap) -> Reply<Account> {
    let account = account(state, headers).await?;
    if account.role != AccountRole::Organiser {
        return Err(ReportsError::OrganisersOnly { role: account.role.as_str() });
    }
    Ok(account)
}

/// The drill as organisers see it.
#[derive(Debug, Serialize)]
pub(crate) struct DrillView {
    drill: String,
    paused: bool,
    current_tick: Option<u32>,
    started_at: Option<DateTime<Utc>>,
    /// When the drill ends, extensions included (`null` before its start is known).
    ends_at: Option<DateTime<Utc>>,
    /// How much later than its scenario says it ends.
    extended_secs: u64,
    /// While the public scoreboard is frozen: the last tick it shows, and since when.
    frozen_through: Option<u32>,
    frozen_at: Option<DateTime<Utc>>,
    /// Who is asking, and as what.
    account: String,
    role: &'static str,
}

pub(crate) async fn drill(State(state): State<ReportsState>, headers: HeaderMap) -> Reply<Json<DrillView>> {
    let account = account(&state, &headers).await?;
    if !matches!(account.role, AccountRole::Organiser | AccountRole::Observer) {
        return Err(ReportsError::OrganisersOnly { role: account.role.as_str() });
    }
    let drill = state.store().drill_state().await?;
    let extended = state.store().drill_extension().await?;
    let started_at = state.started().await?;
    let freeze = state.store().board_freeze().await?;
    Ok(Json(DrillView {
        drill: state.scenario().drill.slug.clone(),
        paused: drill.paused,
        // The engine opens ticks in the store; the state's own field is only the offline command's.
        current_tick: state.store().latest_tick().await?.map(|t| t.tick.0).or(drill.current_tick.map(|t| t.0)),
        started_at,
        ends_at: started_at.map(|s| drill_end(state.scenario(), s, extended)),
        extended_secs: extended.as_secs(),
        frozen_through: freeze.map(|f| f.through.0),
        frozen_at: freeze.map(|f| f.at),
        account: account.name,
        role: account.role.as_str(),
    }))
}

/// Why the drill is paused or resumed, for the audit log.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Reason {
    #[serde(default)]
    reason: String,
}

/// What a pause or resume did.
#[derive(Debug, Serialize)]
pub(crate) struct PauseAnswer {
    paused: bool,
    /// Whether this request changed it (pausing a paused drill changes nothing).
    changed: bool,
}

pub(crate) async fn pause(
    State(state): State<ReportsState>,
    headers: HeaderMap,
    body: Body,
) -> Reply<Json<PauseAnswer>> {
    set_paused(state, headers, body, true).await
}

pub(crate) async fn resume(
    State(state): State<ReportsState>,
    headers: HeaderMap,
    body: Body,
) -> Reply<Json<PauseAnswer>> {
    set_paused(state, headers, body, false).await
}

async fn set_paused(state: ReportsState, headers: HeaderMap, body: Body, paused: bool) -> Reply<Json<PauseAnswer>> {
    let account = organiser(&state, &headers).await?;
    // The body is optional: a bare POST pauses without a reason.
    let Reason { reason } = if headers.contains_key(axum::http::header::CONTENT_TYPE) {
        admin_body(&headers, body).await?
    } else {
        Reason::default()
    };
    let reason = bounded("reason", reason.trim(), MAX_REASON_CHARS)?;
    let now = state.now();
    let changed = state.store().set_paused(paused, now).await?;
    if changed {
        let action = if paused { "drill.pause" } else { "drill.resume" };
        state.store().append_audit(now, &account.actor(), action, &json!({ "reason": reason })).await?;
    }
    Ok(Json(PauseAnswer { paused, changed }))
}

/// Whether to freeze the public scoreboard or lift its freeze, and why.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FreezeBody {
    frozen: bool,
    #[serde(default)]
    reason: String,
}

/// What a freeze or its lifting did.
#[derive(Debug, Serialize)]
pub(crate) struct FreezeAnswer {
    /// The last tick the public board shows; `null` when it is live.
    frozen_through: Option<u32>,
    frozen_at: Option<DateTime<Utc>>,
    /// Whether this request changed it (freezing a frozen board changes nothing).
    changed: bool,
}

/// `POST /api/admin/freeze`: freezes the public scoreboard after the latest scored tick, or
/// lifts the freeze. Spectators then see the board as it stood; organisers and judges keep the
/// live one.
pub(crate) async fn freeze(
    State(state): State<ReportsState>,
    headers: HeaderMap,
    body: Body,
) -> Reply<Json<FreezeAnswer>> {
    let account = organiser(&state, &headers).await?;
    let FreezeBody { frozen, reason } = admin_body(&headers, body).await?;
    let reason = bounded("reason", reason.trim(), MAX_REASON_CHARS)?;
    let through = if frozen {
        let scored = state.store().list_ticks().await?.into_iter().rev().find(|t| t.is_scored());
        let Some(scored) = scored else {
            return Err(ReportsError::WrongState(
                "no tick has been scored yet, so there is no board to freeze; freeze once the first tick is scored"
                    .to_owned(),
            ));
        };
        Some(scored.tick)
    } else {
        None
    };
    let now = state.now();
    let (freeze, changed) = state.store().set_board_freeze(through, now).await?;
    if changed {
        let action = if frozen { "board.freeze" } else { "board.unfreeze" };
        let detail = json!({ "reason": reason, "through": freeze.map(|f| f.through.0) });
        state.store().append_audit(now, &account.actor(), action, &detail).await?;
        state.publish(GameEvent::BoardFrozen { through: freeze.map(|f| f.through) });
    }
    Ok(Json(FreezeAnswer { frozen_through: freeze.map(|f| f.through.0), frozen_at: freeze.map(|f| f.at), changed }))
}

/// Most minutes one request moves the end by.
pub const MAX_EXTEND_MINUTES: u32 = 24 * 60;
/// Most the end may move in all, over every extension.
pub const MAX_EXTENSION: Duration = Duration::from_secs(7 * 24 * 3600);

/// How much later the drill should end, and why.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExtendBody {
    minutes: u32,
    #[serde(default)]
    reason: String,
}

/// What an extension did.
#[derive(Debug, Serialize)]
pub(crate) struct ExtendAnswer {
    /// How much later than the scenario says the drill now ends, in all.
    extended_secs: u64,
    /// When the drill now ends (`null` before it starts, when its start is not yet known).
    ends_at: Option<DateTime<Utc>>,
}

pub(crate) async fn extend(
    State(state): State<ReportsState>,
    headers: HeaderMap,
    body: Body,
) -> Reply<Json<ExtendAnswer>> {
    let account = organiser(&state, &headers).await?;
    let ExtendBody { minutes, reason } = admin_body(&headers, body).await?;
    if !(1..=MAX_EXTEND_MINUTES).contains(&minutes) {
        return Err(ReportsError::BadRequest(format!(
            "`minutes` is {minutes}; extend by 1 to {MAX_EXTEND_MINUTES} minutes at a time"
        )));
    }
    let reason = bounded("reason", reason.trim(), MAX_REASON_CHARS)?;
    let by = Duration::from_secs(u64::from(minutes) * 60);
    let now = state.now();
    let planned = state.scenario().drill.duration;
    let extended = state.store().drill_extension().await?;
    let started = state.started().await?;
    if let Some(started) = started
        && drill_end(state.scenario(), started, extended) <= now
    {
        return Err(ReportsError::DrillOver);
    }
    if extended.saturating_add(by) > MAX_EXTENSION {
        return Err(ReportsError::BadRequest(format!(
            "the drill is already extended by {} minutes; in all it may be extended by at most {} minutes",
            extended.as_secs() / 60,
            MAX_EXTENSION.as_secs() / 60
        )));
    }
    let total = state.store().extend_drill(by, now).await?;
    let ends_at = started.map(|s| drill_end(state.scenario(), s, total));
    let detail =
        json!({ "minutes": minutes, "reason": reason, "ends_at": ends_at, "scenario_secs": planned.as_secs() });
    state.store().append_audit(now, &account.actor(), "drill.extend", &detail).await?;
    state.publish(GameEvent::Extended { total_secs: total.as_secs() });
    Ok(Json(ExtendAnswer { extended_secs: total.as_secs(), ends_at }))
}

/// An announcement as an organiser sends it: English always, Hong Kong Chinese when given.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AnnouncementBody {
    title: String,
    #[serde(default)]
    body: String,
    title_zh: Option<String>,
    body_zh: Option<String>,
}

/// An announcement as the organiser who posted it sees it.
#[derive(Debug, Serialize)]
pub(crate) struct AnnouncementView {
    id: i64,
    title: String,
    body: String,
    title_zh: Option<String>,
    body_zh: Option<String>,
    posted_at: DateTime<Utc>,
}

impl From<Announcement> for AnnouncementView {
    fn from(a: Announcement) -> AnnouncementView {
        // The author's account stays in the audit log; the public sees the organisers.
        let AnnouncementText { title, body, title_zh, body_zh } = a.text;
        AnnouncementView { id: a.id, title, body, title_zh, body_zh, posted_at: a.posted_at }
    }
}

pub(crate) async fn announce(
    State(state): State<ReportsState>,
    headers: HeaderMap,
    body: Body,
) -> Reply<(StatusCode, Json<AnnouncementView>)> {
    let account = organiser(&state, &headers).await?;
    let AnnouncementBody { title, body, title_zh, body_zh } = admin_body(&headers, body).await?;
    let text = checked_announcement(AnnouncementText { title, body, title_zh, body_zh })?;
    let now = state.now();
    let posted = state.store().post_announcement(now, &account.actor(), &text).await?;
    state
        .store()
        .append_audit(now, &account.actor(), "announcement.post", &json!({ "id": posted.id, "title": text.title }))
        .await?;
    state.publish(GameEvent::Announcement {
        id: posted.id,
        title: posted.text.title.clone(),
        title_zh: posted.text.title_zh.clone(),
    });
    Ok((StatusCode::CREATED, Json(posted.into())))
}

/// An announcement with its text trimmed and within bounds; empty Chinese parts are left out.
/// The `gongfang announce` command checks with it too.
pub fn checked_announcement(sent: AnnouncementText) -> Reply<AnnouncementText> {
    let title = bounded("title", sent.title.trim(), MAX_TITLE_CHARS)?;
    if title.is_empty() {
        return Err(ReportsError::BadRequest("an announcement needs a `title` (in English)".to_owned()));
    }
    let optional = |field: &str, text: Option<String>, max: usize| -> Reply<Option<String>> {
        match text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            None => Ok(None),
            Some(t) => bounded(field, t, max).map(Some),
        }
    };
    Ok(AnnouncementText {
        title,
        body: bounded("body", sent.body.trim(), MAX_BODY_CHARS)?,
        title_zh: optional("title_zh", sent.title_zh, MAX_TITLE_CHARS)?,
        body_zh: optional("body_zh", sent.body_zh, MAX_BODY_CHARS)?,
    })
}

/// `text` if it is at most `max` characters and holds no control character but line breaks
/// and tabs.
pub(crate) fn bounded(field: &str, text: &str, max: usize) -> Reply<String> {
    let chars = text.chars().count();
    if chars > max {
        return Err(ReportsError::BadRequest(format!(
            "`{field}` is {chars} characters long; it may be at most {max}: shorten it"
        )));
    }
    if text.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r')) {
        return Err(ReportsError::BadRequest(format!(
            "`{field}` holds a control character; send plain text (line breaks and tabs are fine)"
        )));
    }
    Ok(text.to_owned())
}

async fn admin_body<T: serde::de::DeserializeOwned>(headers: &HeaderMap, body: Body) -> Reply<T> {
    json_body(headers, body, MAX_BODY).await.map_err(|e| match e {
        ReportsError::TooLarge { limit, .. } => ReportsError::BodyTooLarge { limit },
        e => e,
    })
}

/// The scenario's team with this slug, or an answer that says how to name one.
pub(crate) fn team_of_drill<'a>(state: &'a ReportsState, slug: &str) -> Reply<&'a gongfang_core::scenario::Team> {
    state.scenario().teams.iter().find(|t| t.slug == slug.trim()).ok_or_else(|| {
        ReportsError::BadRequest(format!(
            "`{slug}` is not a team of this drill; use a team's slug as the console lists it"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(title: &str, title_zh: Option<&str>) -> AnnouncementText {
        AnnouncementText {
            title: title.to_owned(),
            body: " Lunch at the canteen. ".to_owned(),
            title_zh: title_zh.map(str::to_owned),
            body_zh: Some("  ".to_owned()),
        }
    }

    #[test]
    fn announcements_are_trimmed_bounded_and_need_a_title() {
        let text = checked_announcement(sent(" Break ", Some("休息"))).unwrap();
        assert_eq!(text.title, "Break");
        assert_eq!(text.body, "Lunch at the canteen.");
        assert_eq!(text.title_zh.as_deref(), Some("休息"));
        assert_eq!(text.body_zh, None, "a blank Chinese body is left out");
        let e = checked_announcement(sent("  ", None)).unwrap_err();
        assert!(e.to_string().contains("needs a `title`"), "{e}");
        let long = "長".repeat(MAX_TITLE_CHARS + 1);
        let e = checked_announcement(sent("ok", Some(&long))).unwrap_err();
        assert!(e.to_string().contains("`title_zh` is 201 characters long"), "{e}");
        let e = checked_announcement(sent("bell\u{7}", None)).unwrap_err();
        assert!(e.to_string().contains("control character"), "{e}");
        // Characters, not bytes: a Chinese title of the most characters passes.
        assert!(checked_announcement(sent("ok", Some(&"長".repeat(MAX_TITLE_CHARS)))).is_ok());
    }
}
