//! sea-orm entities, one module per table of `gongfang-migration`. Private to this crate:
//! callers only ever see the domain types the repository returns.

#![allow(missing_debug_implementations)]

macro_rules! no_relations {
    () => {
        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    };
}

pub mod teams {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "teams")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i32,
        pub slug: String,
        pub name_en: String,
        pub name_zh: String,
        pub role: String,
        pub network: String,
        pub nop: bool,
        pub token_hash: Option<String>,
        pub token_prefix: Option<String>,
        pub disabled_at: Option<DateTimeUtc>,
    }
    no_relations!();
}

pub mod services {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "services")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i32,
        pub slug: String,
        pub name_en: String,
        pub name_zh: String,
    }
    no_relations!();
}

pub mod ticks {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ticks")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tick: i32,
        pub opened_at: DateTimeUtc,
        pub closed_at: Option<DateTimeUtc>,
        pub scored: bool,
        pub scored_at: Option<DateTimeUtc>,
    }
    no_relations!();
}

pub mod flags {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "flags")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub tick: i32,
        pub team: i32,
        pub service: i32,
        pub store: i32,
        pub flag: String,
        pub flag_id: Option<String>,
        pub state: Option<Vec<u8>>,
        pub planted_at: DateTimeUtc,
    }
    no_relations!();
}

pub mod check_results {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "check_results")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub tick: i32,
        pub team: i32,
        pub service: i32,
        pub action: String,
        pub store: Option<i32>,
        pub verdict: String,
        pub message: String,
        pub log: String,
        pub duration_ms: i64,
        pub recorded_at: DateTimeUtc,
        /// For a `checker-error`: `timeout`, `crash`, `limit` or `platform`.
        pub fault: Option<String>,
    }
    no_relations!();
}

pub mod submissions {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "submissions")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub attacker: i32,
        pub flag: String,
        pub victim: i32,
        pub service: i32,
        pub store: i32,
        pub tick_planted: i32,
        pub tick_submitted: i32,
        pub submitted_at: DateTimeUtc,
    }
    no_relations!();
}

pub mod scores {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "scores")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tick: i32,
        #[sea_orm(primary_key, auto_increment = false)]
        pub team: i32,
        pub attack: f64,
        pub defence: f64,
        pub sla: f64,
        pub total: f64,
    }
    no_relations!();
}

pub mod announcements {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "announcements")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub title: String,
        pub body: String,
        pub posted_at: DateTimeUtc,
        pub author: String,
        pub title_zh: Option<String>,
        pub body_zh: Option<String>,
    }
    no_relations!();
}

pub mod audit_log {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_log")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub at: DateTimeUtc,
        pub actor: String,
        pub action: String,
        pub detail: String,
    }
    no_relations!();
}

pub mod drill_state {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "drill_state")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i32,
        pub paused: bool,
        pub current_tick: Option<i32>,
        pub updated_at: DateTimeUtc,
        pub started_at: Option<DateTimeUtc>,
        /// Seconds organisers added to the scenario's duration.
        pub extended_secs: i64,
        /// The last tick the public scoreboard shows while organisers have it frozen.
        pub frozen_through: Option<i32>,
        pub frozen_at: Option<DateTimeUtc>,
    }
    no_relations!();
}

pub mod drill_identity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "drill_identity")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i32,
        /// 32 lowercase hex digits, made by the migration that created the table.
        pub drill_id: String,
    }
    no_relations!();
}

pub mod accounts {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "accounts")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub name: String,
        pub role: String,
        pub password_hash: String,
        pub created_at: DateTimeUtc,
        /// `hmac-sha256$` and the keyed hash of the account's API token, if it has one.
        pub api_token_hash: Option<String>,
        pub api_token_issued_at: Option<DateTimeUtc>,
    }
    no_relations!();
}
