//! Injects: organisers' tasks with a deadline and a rubric, the teams' answers (one per team,
//! marked late after the deadline) and the judges' grades (one per answer). Each change is one
//! transaction with its audit line.

use chrono::{DateTime, Utc};
use gongfang_core::inject::{Criterion, InjectAudience, InjectDraft, InjectGrade};
use gongfang_core::{AccountRole, TeamId};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::Store;
use crate::error::{Result, StoreError, corrupt, is_unique_violation};
use crate::ops::Account;
use crate::reports::audit;
use crate::rows::{de, id32};

/// Entities of the inject tables (`m20261214_000002_injects`). Private to this module.
#[allow(missing_debug_implementations)]
mod entity {
    pub mod injects {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "injects")]
        pub struct Model {
            #[sea_orm(primary_key)]
            pub id: i32,
            pub title: String,
            pub title_zh: Option<String>,
            pub body: String,
            pub body_zh: Option<String>,
            pub audience: String,
            pub deadline: DateTimeUtc,
            pub rubric: String,
            pub posted_by: String,
            pub posted_at: DateTimeUtc,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }

    pub mod inject_answers {
        use sea_orm::entity::prelude::*;

        #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
        #[sea_orm(table_name = "inject_answers")]
        pub struct Model {
            #[sea_orm(primary_key)]
            pub id: i32,
            pub inject: i32,
            pub team: i32,
            pub text: String,
            pub answered_at: DateTimeUtc,
            pub late: bool,
            pub grade: Option<String>,
            pub points: Option<i32>,
            pub grade_reason: Option<String>,
            pub graded_by: Option<String>,
            pub graded_at: Option<DateTimeUtc>,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }
}

use entity::{inject_answers, injects};

/// A posted inject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inject {
    pub id: i64,
    /// Its texts, audience, deadline and rubric, as checked when posted.
    pub task: InjectDraft,
    /// The organiser's account name.
    pub posted_by: String,
    pub posted_at: DateTime<Utc>,
}

/// A judge's grade as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredGrade {
    pub grade: InjectGrade,
    pub judge: String,
    pub at: DateTime<Utc>,
}

/// A team's answer to an inject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectAnswer {
    pub inject: i64,
    pub team: TeamId,
    pub text: String,
    pub answered_at: DateTime<Utc>,
    /// Made after the inject's deadline.
    pub late: bool,
    pub grade: Option<StoredGrade>,
}

fn inject_from_row(r: injects::Model) -> Result<Inject> {
    let bad = |detail: String| corrupt("injects", r.id, detail);
    let audience = InjectAudience::from_name(&r.audience).ok_or_else(|| bad(format!("audience `{}`", r.audience)))?;
    let rubric: Vec<Criterion> = serde_json::from_str(&r.rubric).map_err(|e| bad(format!("rubric: {e}")))?;
    Ok(Inject {
        id: i64::from(r.id),
        task: InjectDraft {
            title: r.title,
            title_zh: r.title_zh,
            body: r.body,
            body_zh: r.body_zh,
            audience,
            deadline: r.deadline,
            rubric,
        },
        posted_by: r.posted_by,
        posted_at: r.posted_at,
    })
}

fn answer_from_row(r: inject_answers::Model) -> Result<InjectAnswer> {
    let bad = |detail: String| corrupt("inject_answers", r.id, detail);
    let grade = match (r.grade, r.graded_by, r.graded_at) {
        (Some(points), Some(judge), Some(at)) => Some(StoredGrade {
            grade: InjectGrade {
                points: serde_json::from_str(&points).map_err(|e| bad(format!("grade: {e}")))?,
                reason: r.grade_reason.unwrap_or_default(),
            },
            judge,
            at,
        }),
        _ => None,
    };
    Ok(InjectAnswer {
        inject: i64::from(r.inject),
        team: TeamId(de("inject_answers", r.id, "team", r.team)?),
        text: r.text,
        answered_at: r.answered_at,
        late: r.late,
        grade,
    })
}

impl Store {
    /// Posts an inject (checked by [`gongfang_core::inject::check_inject`]) under the
    /// organiser's account, audited as `inject.post`.
    pub async fn post_inject(&self, task: &InjectDraft, by: &Account, at: DateTime<Utc>) -> Result<Inject> {
        let txn = self.write_txn().await?;
        let row = injects::ActiveModel {
            title: Set(task.title.clone()),
            title_zh: Set(task.title_zh.clone()),
            body: Set(task.body.clone()),
            body_zh: Set(task.body_zh.clone()),
            audience: Set(task.audience.as_str().to_owned()),
            deadline: Set(task.deadline),
            rubric: Set(serde_json::to_string(&task.rubric).map_err(|e| corrupt("injects", 0, e.to_string()))?),
            posted_by: Set(by.name.clone()),
            posted_at: Set(at),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        let detail = serde_json::json!({
            "inject": row.id,
            "title": task.title,
            "audience": task.audience.as_str(),
            "deadline": task.deadline,
        });
        audit(&txn, at, &by.actor(), "inject.post", detail).await?;
        txn.commit().await?;
        inject_from_row(row)
    }

    /// Every inject, oldest first.
    pub async fn injects(&self) -> Result<Vec<Inject>> {
        let rows = injects::Entity::find().order_by_asc(injects::Column::Id).all(&self.db).await?;
        rows.into_iter().map(inject_from_row).collect()
    }

    /// One inject.
    pub async fn inject(&self, id: i64) -> Result<Inject> {
        let row = injects::Entity::find_by_id(id32(id)).one(&self.db).await?.ok_or(StoreError::UnknownInject(id))?;
        inject_from_row(row)
    }

    /// Answers, oldest first: of one team, or every team's.
    pub async fn inject_answers(&self, team: Option<TeamId>) -> Result<Vec<InjectAnswer>> {
        let mut query = inject_answers::Entity::find();
        if let Some(team) = team {
            query = query.filter(inject_answers::Column::Team.eq(i32::from(team.0)));
        }
        let rows = query.order_by_asc(inject_answers::Column::Id).all(&self.db).await?;
        rows.into_iter().map(answer_from_row).collect()
    }

    /// A team's one answer to an inject the caller read (and checked is for the team), marked
    /// late when made after its deadline; audited as `inject.answer`.
    pub async fn answer_inject(
        &self,
        inject: &Inject,
        team: TeamId,
        text: &str,
        at: DateTime<Utc>,
    ) -> Result<InjectAnswer> {
        let id = inject.id;
        let late = at > inject.task.deadline;
        let txn = self.write_txn().await?;
        let row = inject_answers::ActiveModel {
            inject: Set(id32(id)),
            team: Set(i32::from(team.0)),
            text: Set(text.to_owned()),
            answered_at: Set(at),
            late: Set(late),
            ..Default::default()
        }
        .insert(&txn)
        .await
        .map_err(|e| if is_unique_violation(&e) { StoreError::InjectAnswered { inject: id } } else { e.into() })?;
        let detail = serde_json::json!({ "inject": id, "team": team.0, "late": late });
        audit(&txn, at, &format!("team:{}", team.0), "inject.answer", detail).await?;
        txn.commit().await?;
        answer_from_row(row)
    }

    /// A judge's one grade of a team's answer (checked against the rubric by
    /// [`gongfang_core::inject::check_grade`]); audited as `inject.grade`.
    pub async fn grade_inject_answer(
        &self,
        id: i64,
        team: TeamId,
        grade: &InjectGrade,
        judge: &Account,
        at: DateTime<Utc>,
    ) -> Result<InjectAnswer> {
        if judge.role != AccountRole::Judge {
            return Err(StoreError::NotAJudge(judge.name.clone()));
        }
        let txn = self.write_txn().await?;
        let points = serde_json::to_string(&grade.points).map_err(|e| corrupt("inject_answers", 0, e.to_string()))?;
        let total = i32::try_from(grade.total()).unwrap_or(i32::MAX);
        let moved = inject_answers::Entity::update_many()
            .col_expr(inject_answers::Column::Grade, points.into())
            .col_expr(inject_answers::Column::Points, total.into())
            .col_expr(inject_answers::Column::GradeReason, grade.reason.clone().into())
            .col_expr(inject_answers::Column::GradedBy, judge.name.clone().into())
            .col_expr(inject_answers::Column::GradedAt, at.into())
            .filter(inject_answers::Column::Inject.eq(id32(id)))
            .filter(inject_answers::Column::Team.eq(i32::from(team.0)))
            .filter(inject_answers::Column::GradedAt.is_null())
            .exec(&txn)
            .await?;
        let row = inject_answers::Entity::find()
            .filter(inject_answers::Column::Inject.eq(id32(id)))
            .filter(inject_answers::Column::Team.eq(i32::from(team.0)))
            .one(&txn)
            .await?
            .ok_or(StoreError::NoInjectAnswer { inject: id, team: team.0 })?;
        if moved.rows_affected != 1 {
            return Err(StoreError::InjectGraded { inject: id, team: team.0 });
        }
        let detail = serde_json::json!({
            "inject": id,
            "team": team.0,
            "points": grade.points,
            "total": grade.total(),
            "reason": grade.reason,
        });
        audit(&txn, at, &judge.actor(), "inject.grade", detail).await?;
        txn.commit().await?;
        answer_from_row(row)
    }
}
