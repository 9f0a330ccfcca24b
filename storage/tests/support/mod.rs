//! Runs each scenario function once on SQLite and once on PostgreSQL.

/// `on_both_backends!(a, b)` makes tests `sqlite::a`, `postgres::a`, ... that call
/// `a(&store)` with a fresh store of each backend.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let url = format!("sqlite://{}/g.db", dir.path().display());
                    let store = guardrail_storage::Store::open(&url).unwrap();
                    super::$name(&store);
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    let Some(db) = guardrail_storage::testing::PgTestDb::create_or_skip("gr_store") else {
                        return;
                    };
                    let store = guardrail_storage::Store::open(&db.url).unwrap();
                    super::$name(&store);
                }
            )*
        }
    };
}
