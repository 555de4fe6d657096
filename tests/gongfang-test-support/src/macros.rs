//! `backend_tests!`: one async test body, run as a SQLite test and as a PostgreSQL test.

/// For each `async fn NAME(T) -> anyhow::Result<()>` named, generates the tests `sqlite::NAME`
/// and `postgres::NAME`, each on a fresh database (see [`run`](crate::run)).
///
/// `T` is the [`TestDb`](crate::TestDb) itself, or with `setup = path::to::fn;` first, what that
/// `async fn(TestDb) -> T` makes of it (a running server, say). The paths are relative to the
/// module the macro is called in.
///
/// ```ignore
/// gongfang_test_support::backend_tests!(stores_a_flag, scores_once);
/// gongfang_test_support::backend_tests!(setup = common::spawn; files_a_report);
/// ```
#[macro_export]
macro_rules! backend_tests {
    (setup = $($setup:ident)::+; $($name:ident),* $(,)?) => {
        $crate::backend_tests!(@modules (super::$($setup)::+) $($name),*);
    };
    (@modules ($setup:expr) $($name:ident),*) => {
        $crate::backend_tests!(@module sqlite Sqlite ($setup) $($name),*);
        $crate::backend_tests!(@module postgres Postgres ($setup) $($name),*);
    };
    (@module $module:ident $backend:ident ($setup:expr) $($name:ident),*) => {
        pub mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::run($crate::Backend::$backend, $setup, super::$name).await;
                }
            )*
        }
    };
    ($($name:ident),* $(,)?) => {
        $crate::backend_tests!(@modules ($crate::keep) $($name),*);
    };
}
