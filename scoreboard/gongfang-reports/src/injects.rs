//! Injects over HTTP: organisers post a task with a deadline and a rubric
//! (`POST /api/admin/injects`) and follow the answers (`GET /api/admin/injects`, observers too);
//! teams see the tasks meant for them and answer each once (`/api/portal/injects`), late
//! answers marked late; judges read every answer and grade it against the rubric
//! (`/api/judge/injects`). Each change is audited by the store under who made it.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use gongfang_core::TeamId;
use gongfang_core::inject::{Criterion, InjectDraft, InjectGrade, check_answer, check_grade, check_inject};
use gongfang_store::injects::{Inject, InjectAnswer};
use serde::{Deserialize, Serialize};

use crate::api::parse_id;
use crate::error::ReportsError;
use crate::state::ReportsState;
use crate::upload::json_body;
use crate::view::team_slug;
use crate::{admin, auth, console};

type Reply<T> = Result<T, ReportsError>;

/// An inject as the API shows it.
#[derive(Debug, Serialize)]
pub(crate) struct InjectView {
    id: i64,
    title: String,
    title_zh: Option<String>,
    body: String,
    body_zh: Option<String>,
    audience: &'static str,
    deadline: DateTime<Utc>,
    rubric: Vec<Criterion>,
    /// The rubric's points, all criteria together.
    max_points: u64,
    posted_at: DateTime<Utc>,
    /// For organisers and judges: who posted it.
    #[serde(skip_serializing_if = "Option::is_none")]
    posted_by: Option<String>,
}

/// An answer as the API shows it.
#[derive(Debug, Serialize)]
pub(crate) struct AnswerView {
    /// The answering team's slug (for judges and organisers).
    #[serde(skip_serializing_if = "Option::is_none")]
    team: Option<String>,
    text: String,
    answered_at: DateTime<Utc>,
    late: bool,
    grade: Option<GradeView>,
}

#[derive(Debug, Serialize)]
struct GradeView {
    points: std::collections::BTreeMap<String, u32>,
    total: u64,
    reason: String,
    graded_at: DateTime<Utc>,
    /// The judge; shown to judges only.
    #[serde(skip_serializing_if = "Option::is_none")]
    judge: Option<String>,
}

fn inject_view(i: &Inject, staff: bool) -> InjectView {
    let t = &i.task;
    InjectView {
        id: i.id,
        title: t.title.clone(),
        title_zh: t.title_zh.clone(),
        body: t.body.clone(),
        body_zh: t.body_zh.clone(),
        audience: t.audience.as_str(),
        deadline: t.deadline,
        rubric: t.rubric.clone(),
        max_points: t.rubric.iter().map(|c| u64::from(c.max_points)).sum(),
        posted_at: i.posted_at,
        posted_by: staff.then(|| i.posted_by.clone()),
    }
}

fn answer_view(state: &ReportsState, a: &InjectAnswer, judge: bool) -> AnswerView {
    AnswerView {
        team: judge.then(|| team_slug(state.scenario(), a.team)),
        text: a.text.clone(),
        answered_at: a.answered_at,
        late: a.late,
        grade: a.grade.as_ref().map(|g| GradeView {
            points: g.grade.points.clone(),
            total: g.grade.total(),
            reason: g.grade.reason.clone(),
            graded_at: g.at,
            judge: judge.then(|| g.judge.clone()),
        }),
    }
}

/// `POST /api/admin/injects`: an organiser posts an inject; `201` with it.
pub(crate) async fn post(
    State(state): State<ReportsState>,
    headers: HeaderMap,
    body: Body,
) -> Reply<(StatusCode, Json<InjectView>)> {
    let account = admin::organiser(&state, &headers).await?;
    let draft: InjectDraft = json_body(&headers, body, state.settings().max_json_body).await?;
    let task = check_inject(&draft, state.now()).map_err(|e| ReportsError::InvalidInject(e.0))?;
    let posted = state.store().post_inject(&task, &account, state.now()).await?;
    tracing::info!(inject = posted.id, by = %account.name, "inject posted");
    Ok((StatusCode::CREATED, Json(inject_view(&posted, true))))
}

/// An inject with how its answers stand, for organisers and observers.
#[derive(Debug, Serialize)]
pub(crate) struct InjectProgress {
    #[serde(flatten)]
    inject: InjectView,
    /// Teams the inject is for.
    asked: usize,
    answered: usize,
    late: usize,
    graded: usize,
}

/// `GET /api/admin/injects`: every inject with counts of its answers (no answer's text).
pub(crate) async fn progress(
    State(state): State<ReportsState>,
    headers: HeaderMap,
) -> Reply<Json<Vec<InjectProgress>>> {
    console::reader(&state, &headers).await?;
    let answers = state.store().inject_answers(None).await?;
    let s = state.scenario();
    let list = state
        .store()
        .injects()
        .await?
        .iter()
        .map(|i| {
            let mine: Vec<&InjectAnswer> = answers.iter().filter(|a| a.inject == i.id).collect();
            InjectProgress {
                inject: inject_view(i, true),
                asked: s.teams.iter().filter(|t| i.task.audience.includes(t.role)).count(),
                answered: mine.len(),
                late: mine.iter().filter(|a| a.late).count(),
                graded: mine.iter().filter(|a| a.grade.is_some()).count(),
            }
        })
        .collect();
    Ok(Json(list))
}

/// An inject as a team sees it: the task and the team's own answer.
#[derive(Debug, Serialize)]
pub(crate) struct TeamInject {
    #[serde(flatten)]
    inject: InjectView,
    answer: Option<AnswerView>,
}

/// Whether the inject is for `team` (by its role in the scenario).
fn asks(state: &ReportsState, inject: &Inject, team: TeamId) -> bool {
    state.scenario().team(team).is_some_and(|t| inject.task.audience.includes(t.role))
}

/// `GET /api/portal/injects`: the injects for the caller's team, oldest first.
pub(crate) async fn team_list(State(state): State<ReportsState>, headers: HeaderMap) -> Reply<Json<Vec<TeamInject>>> {
    let team = auth::team(&state, &headers).await?;
    let answers = state.store().inject_answers(Some(team)).await?;
    let list = state
        .store()
        .injects()
        .await?
        .iter()
        .filter(|i| asks(&state, i, team))
        .map(|i| TeamInject {
            inject: inject_view(i, false),
            answer: answers.iter().find(|a| a.inject == i.id).map(|a| answer_view(&state, a, false)),
        })
        .collect();
    Ok(Json(list))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AnswerBody {
    text: String,
}

/// `POST /api/portal/injects/{id}/answer`: the team's one answer; `201`, marked late after the
/// deadline. An inject not meant for the team is `404`, as one that does not exist.
pub(crate) async fn answer(
    State(state): State<ReportsState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Reply<(StatusCode, Json<AnswerView>)> {
    let id = parse_id(&id, "inject")?;
    let team = auth::team(&state, &headers).await?;
    let sent: AnswerBody = json_body(&headers, body, state.settings().max_json_body).await?;
    let inject = state.store().inject(id).await?;
    if !asks(&state, &inject, team) {
        return Err(ReportsError::UnknownInject(format!("no inject {id} for your team")));
    }
    let text = check_answer(&sent.text).map_err(|e| ReportsError::InvalidInject(e.0))?;
    let answer = state.store().answer_inject(&inject, team, &text, state.now()).await?;
    Ok((StatusCode::CREATED, Json(answer_view(&state, &answer, false))))
}

/// An inject with every answer, for judges.
#[derive(Debug, Serialize)]
pub(crate) struct JudgedInject {
    #[serde(flatten)]
    inject: InjectView,
    answers: Vec<AnswerView>,
}

/// `GET /api/judge/injects`: every inject with every team's answer, oldest first.
pub(crate) async fn judge_list(
    State(state): State<ReportsState>,
    headers: HeaderMap,
) -> Reply<Json<Vec<JudgedInject>>> {
    auth::judge(&state, &headers).await?;
    let answers = state.store().inject_answers(None).await?;
    let list = state
        .store()
        .injects()
        .await?
        .iter()
        .map(|i| JudgedInject {
            inject: inject_view(i, true),
            answers: answers.iter().filter(|a| a.inject == i.id).map(|a| answer_view(&state, a, true)).collect(),
        })
        .collect();
    Ok(Json(list))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GradeBody {
    /// The answering team's slug.
    team: String,
    points: std::collections::BTreeMap<String, u32>,
    #[serde(default)]
    reason: String,
}

/// `POST /api/judge/injects/{id}/grade`: a judge grades one team's answer, once.
pub(crate) async fn grade(
    State(state): State<ReportsState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Reply<Json<AnswerView>> {
    let id = parse_id(&id, "inject")?;
    let judge = auth::judge(&state, &headers).await?;
    let sent: GradeBody = json_body(&headers, body, state.settings().max_json_body).await?;
    let team = state
        .scenario()
        .teams
        .iter()
        .find(|t| t.slug == sent.team)
        .ok_or_else(|| ReportsError::UnknownTeam(sent.team.clone()))?
        .id;
    let inject = state.store().inject(id).await?;
    let grade = check_grade(&inject.task.rubric, &InjectGrade { points: sent.points, reason: sent.reason })
        .map_err(|e| ReportsError::InvalidInject(e.0))?;
    let answer = state.store().grade_inject_answer(id, team, &grade, &judge, state.now()).await?;
    Ok(Json(answer_view(&state, &answer, true)))
}
