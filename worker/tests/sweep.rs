//! The quote sweep under a backlog (found by `scripts/chaos`: with workers killed every few
//! seconds, watchers waited in the queue past the sweep's two minutes and every minute's sweep
//! added another chain per open quote, 400 waiting watchers for 96 quotes after eight minutes).

use std::sync::Arc;

use chrono::{Duration as ChronoDuration, TimeZone, Utc};
use openpleb_common::db::quotes;
use openpleb_common::jobs::{enqueue, queues, SweepQuotes, WatchMintQuote};
use openpleb_devkit::wallet_manager;
use openpleb_worker::WorkerContext;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

async fn watchers(pool: &PgPool, quote_id: &str) -> i64 {
    sqlx::query_scalar(
        "select count(*) from apalis.jobs
          where job_type = $1 and convert_from(job, 'UTF8')::jsonb ->> 'quote_id' = $2",
    )
    .bind(queues::WATCH_MINT_QUOTE)
    .bind(quote_id)
    .fetch_one(pool)
    .await
    .expect("count")
}

/// Two stale open quotes, one with its watcher still waiting in the queue (no worker runs):
/// two sweeps in two slots leave the waiting one alone and give the forgotten one one chain,
/// which the second sweep finds waiting too.
#[sqlx::test(migrations = false)]
async fn a_sweep_adds_no_watcher_to_a_quote_whose_watcher_waits(
    _opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let pool = openpleb_devkit::fixtures::test_pool(conn)
        .await
        .expect("pool");
    let mut tx = pool.begin().await.expect("tx");
    let expires = Utc::now() + ChronoDuration::minutes(30);
    for q in ["q-waiting", "q-forgotten"] {
        quotes::insert(&mut tx, q, "session_sweep", 1_000, expires)
            .await
            .expect("quote");
    }
    enqueue(&mut tx, &WatchMintQuote::first("q-waiting"))
        .await
        .expect("watcher");
    tx.commit().await.expect("commit");
    sqlx::query("update wallet_quotes set updated_at = now() - interval '10 minutes'")
        .execute(&pool)
        .await
        .expect("age");

    let dir = tempfile::tempdir().expect("dir");
    let wallets = wallet_manager(pool.clone(), "http://127.0.0.1:9", dir.path(), 4);
    let config =
        openpleb_devkit::test_config("postgres://unused", "http://127.0.0.1:9", dir.path());
    let ctx = Arc::new(WorkerContext::from_config(
        pool.clone(),
        wallets,
        Arc::new(config),
    ));
    for minute in [0, 1] {
        let slot = Utc
            .with_ymd_and_hms(2026, 12, 1, 12, minute, 0)
            .single()
            .expect("slot");
        openpleb_worker::jobs::sweep_quotes::handle(
            SweepQuotes { slot },
            apalis::prelude::Data::new(ctx.clone()),
        )
        .await
        .expect("sweep");
    }
    assert_eq!(
        watchers(&pool, "q-waiting").await,
        1,
        "its own watcher only"
    );
    assert_eq!(
        watchers(&pool, "q-forgotten").await,
        1,
        "one chain, not one per sweep"
    );
}
