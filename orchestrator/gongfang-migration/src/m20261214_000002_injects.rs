//! Injects (`injects`): tasks organisers post to teams during the drill, each with its texts in
//! English and (optionally) Hong Kong Chinese, the teams it is for, a deadline and a rubric (a
//! JSON list of criteria with their most points); and the teams' answers (`inject_answers`),
//! one per team and inject (a unique key decides), marked late when made after the deadline,
//! with a judge's grade once graded (points per criterion as JSON, total, reason, judge, time).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Injects {
    Table,
    Id,
    Title,
    TitleZh,
    Body,
    BodyZh,
    Audience,
    Deadline,
    Rubric,
    PostedBy,
    PostedAt,
}

#[derive(DeriveIden)]
enum InjectAnswers {
    Table,
    Id,
    Inject,
    Team,
    Text,
    AnsweredAt,
    Late,
    Grade,
    Points,
    GradeReason,
    GradedBy,
    GradedAt,
}

#[derive(DeriveIden)]
enum Teams {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Injects::Table)
                .col(pk_auto(Injects::Id))
                .col(text(Injects::Title))
                .col(text_null(Injects::TitleZh))
                .col(text(Injects::Body))
                .col(text_null(Injects::BodyZh))
                .col(string(Injects::Audience))
                .col(timestamp_with_time_zone(Injects::Deadline))
                .col(text(Injects::Rubric))
                .col(string(Injects::PostedBy))
                .col(timestamp_with_time_zone(Injects::PostedAt))
                .take(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(InjectAnswers::Table)
                .col(pk_auto(InjectAnswers::Id))
                .col(integer(InjectAnswers::Inject))
                .col(integer(InjectAnswers::Team))
                .col(text(InjectAnswers::Text))
                .col(timestamp_with_time_zone(InjectAnswers::AnsweredAt))
                .col(boolean(InjectAnswers::Late))
                .col(text_null(InjectAnswers::Grade))
                .col(integer_null(InjectAnswers::Points))
                .col(text_null(InjectAnswers::GradeReason))
                .col(string_null(InjectAnswers::GradedBy))
                .col(timestamp_with_time_zone_null(InjectAnswers::GradedAt))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_inject_answers_inject")
                        .from(InjectAnswers::Table, InjectAnswers::Inject)
                        .to(Injects::Table, Injects::Id)
                        .on_delete(ForeignKeyAction::Restrict),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_inject_answers_team")
                        .from(InjectAnswers::Table, InjectAnswers::Team)
                        .to(Teams::Table, Teams::Id)
                        .on_delete(ForeignKeyAction::Restrict),
                )
                .take(),
        )
        .await?;
        // One answer per team and inject, whatever the concurrency.
        m.create_index(
            Index::create()
                .name("uq_inject_answers_inject_team")
                .table(InjectAnswers::Table)
                .col(InjectAnswers::Inject)
                .col(InjectAnswers::Team)
                .unique()
                .take(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(InjectAnswers::Table).take()).await?;
        m.drop_table(Table::drop().table(Injects::Table).take()).await
    }
}
