//! Whole databases on a PostgreSQL server: creating one by name and dropping it again, so a
//! test or a benchmark can have a database of its own without speaking SQL itself.

use sea_orm::ConnectionTrait;

use crate::{Result, Store};

impl Store {
    /// Creates the empty database `name` on the PostgreSQL server at `server_url` (a URL naming
    /// any database the user may connect to, e.g. `postgres`) and returns the new database's URL.
    pub async fn create_database(server_url: &str, name: &str) -> Result<String> {
        let admin = Store::connect(server_url).await?;
        let created = admin.db.execute_unprepared(&format!("CREATE DATABASE {}", quote_identifier(name))).await;
        admin.close().await?;
        created?;
        Ok(database_url(server_url, name))
    }

    /// Drops the database `name` from the server at `server_url`, ending sessions still connected
    /// to it; dropping a database that does not exist is not an error.
    pub async fn drop_database(server_url: &str, name: &str) -> Result<()> {
        let admin = Store::connect(server_url).await?;
        let dropped = admin
            .db
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_identifier(name)))
            .await;
        admin.close().await?;
        dropped?;
        Ok(())
    }
}

/// `server_url` with its database replaced by `name`, keeping user, host, port and options.
pub fn database_url(server_url: &str, name: &str) -> String {
    let (base, query) = server_url.split_once('?').map_or((server_url, None), |(b, q)| (b, Some(q)));
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// `name` as a quoted SQL identifier: any name is safe to splice into a statement.
fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_is_replaced_and_the_rest_kept() {
        assert_eq!(database_url("postgres://gf@db:5432/postgres", "t1"), "postgres://gf@db:5432/t1");
        assert_eq!(
            database_url("postgres://gf:pw@db/postgres?sslmode=disable", "t1"),
            "postgres://gf:pw@db/t1?sslmode=disable"
        );
        assert_eq!(database_url("postgres://gf@db:5432", "t1"), "postgres://gf@db:5432/t1");
        assert_eq!(database_url("postgres://gf@db?sslmode=disable", "t1"), "postgres://gf@db/t1?sslmode=disable");
    }

    #[test]
    fn names_cannot_end_the_identifier() {
        assert_eq!(quote_identifier("gf_test"), "\"gf_test\"");
        assert_eq!(quote_identifier("a\"; DROP DATABASE x; --"), "\"a\"\"; DROP DATABASE x; --\"");
    }
}
