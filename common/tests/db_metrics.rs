//! Database timing reaches the metrics: with the process' logging set up as the binaries do it
//! (`telemetry::init`, logs at `info`), every statement is timed by kind and every wait for a
//! pooled connection is recorded, although neither is logged at that level.

use openpleb_common::config::LogFormat;
use openpleb_common::metrics::names::{DB_POOL_WAIT, DB_QUERY_DURATION};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// The count of a histogram series whose labels contain `having`.
fn count(text: &str, name: &str, having: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}_count")) && l.contains(having))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[sqlx::test(migrations = false)]
async fn statements_and_pool_waits_are_timed(_opts: PgPoolOptions, conn: PgConnectOptions) {
    std::env::remove_var("RUST_LOG");
    openpleb_common::telemetry::init(LogFormat::Json);
    openpleb_common::metrics::install().expect("recorder");
    let pool = openpleb_common::db::pool_options(2)
        .connect_with(conn)
        .await
        .expect("pool");
    let before = openpleb_common::metrics::render();
    for _ in 0..5 {
        let one: i32 = sqlx::query_scalar("select 1")
            .fetch_one(&pool)
            .await
            .expect("select");
        assert_eq!(one, 1);
    }
    sqlx::query("create temporary table t (n int)")
        .execute(&pool)
        .await
        .expect("create");
    let after = openpleb_common::metrics::render();
    let grew =
        |name: &str, having: &str| count(&after, name, having) - count(&before, name, having);
    assert!(grew(DB_QUERY_DURATION, "op=\"select\"") >= 5.0, "{after}");
    assert!(grew(DB_QUERY_DURATION, "op=\"other\"") >= 1.0, "{after}");
    assert!(grew(DB_POOL_WAIT, "") >= 6.0, "{after}");
    assert!(after.contains(&format!("{DB_QUERY_DURATION}_bucket")));
}
