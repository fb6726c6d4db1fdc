//! The quote sweep under a backlog (found by `scripts/chaos`: with workers killed every few
//! seconds, watchers waited in the queue past the sweep's two minutes and every minute's sweep
//! added another chain per open quote, 400 waiting watchers for 96 quotes after eight minutes).

use std::sync::Arc;

use chrono::{Duration as ChronoDuration, TimeZone, Utc};
use openpleb_common::db::quotes;
use openpleb_common::jobs::{enqueue, queues, SweepQuotes, WatchMintQuote};
use openpleb_devkit::fixtures::test_pool;
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

/// A worker's context whose mint is unreachable (asking it would fail the job).
fn offline(pool: &PgPool, dir: &std::path::Path) -> Arc<WorkerContext> {
    let wallets = wallet_manager(pool.clone(), "http://127.0.0.1:9", dir, 4);
    let config = openpleb_devkit::test_config("postgres://unused", "http://127.0.0.1:9");
    Arc::new(WorkerContext::from_config(
        pool.clone(),
        wallets,
        Arc::new(config),
    ))
}

/// The sweep of the slot at 12:`minute` on a fixed day.
async fn sweep_at(ctx: &Arc<WorkerContext>, minute: u32) {
    let slot = Utc.with_ymd_and_hms(2026, 12, 1, 12, minute, 0).single();
    let slot = slot.expect("slot");
    let data = apalis::prelude::Data::new(ctx.clone());
    let swept = openpleb_worker::jobs::sweep_quotes::handle(SweepQuotes { slot }, data).await;
    swept.expect("sweep");
}

/// Two stale open quotes, one with its watcher still waiting in the queue (no worker runs):
/// two sweeps in two slots leave the waiting one alone and give the forgotten one one chain,
/// which the second sweep finds waiting too.
#[sqlx::test(migrations = false)]
async fn a_sweep_adds_no_watcher_to_a_quote_whose_watcher_waits(
    _opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let pool = test_pool(conn).await.expect("pool");
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
    let ctx = offline(&pool, dir.path());
    for minute in [0, 1] {
        sweep_at(&ctx, minute).await;
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

/// More stale quotes than a sweep reads at once, all watched but the newest: the sweep reads on
/// past the watched ones (an ended offer's quote is watched by a look due only at its expiry,
/// so hundreds of them stay stale and watched for as long) and gives the forgotten one a chain.
#[sqlx::test(migrations = false)]
async fn a_sweep_finds_a_forgotten_quote_behind_many_watched_ones(
    _opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let pool = test_pool(conn).await.expect("pool");
    let watched = 600;
    sqlx::query(
        "insert into wallet_quotes (quote_id, wallet_id, amount_sats, expires_at, updated_at)
         select 'q-' || lpad(i::text, 4, '0'), 'session_sweep', 1000, now() + interval '1 hour',
                now() - interval '1 hour' + make_interval(secs => i)
           from generate_series(0, $1) i",
    )
    .bind(watched)
    .execute(&pool)
    .await
    .expect("quotes");
    let mut tx = pool.begin().await.expect("tx");
    for i in 0..watched {
        enqueue(&mut tx, &WatchMintQuote::first(&format!("q-{i:04}")))
            .await
            .expect("watcher");
    }
    tx.commit().await.expect("commit");
    let forgotten = format!("q-{watched:04}");

    let dir = tempfile::tempdir().expect("dir");
    let ctx = offline(&pool, dir.path());
    sweep_at(&ctx, 0).await;
    assert_eq!(
        watchers(&pool, &forgotten).await,
        1,
        "found behind the others"
    );
    assert_eq!(watchers(&pool, "q-0000").await, 1, "its own watcher only");
    let total: i64 = sqlx::query_scalar("select count(*) from apalis.jobs where job_type = $1")
        .bind(queues::WATCH_MINT_QUOTE)
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(total, i64::from(watched) + 1);
}

/// The chain a sweep starts for the quote of a cancelled offer does not ask the mint (here
/// unreachable: asking would fail the look): its one look left is scheduled at the quote's
/// expiry plus the payment grace.
#[sqlx::test(migrations = false)]
async fn a_swept_quote_of_a_cancelled_offer_waits_for_its_last_look(
    _opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let pool = test_pool(conn).await.expect("pool");
    let mut tx = pool.begin().await.expect("tx");
    let session = openpleb_devkit::fixtures::insert_session(&mut tx)
        .await
        .expect("session");
    let key = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
    let offer = openpleb_devkit::fixtures::insert_offer(&mut tx, session, 10_000, key)
        .await
        .expect("offer");
    let expires = Utc::now() + ChronoDuration::minutes(30);
    quotes::insert_for_offer(
        &mut tx,
        &quotes::OfferQuote {
            quote_id: "q-cancelled",
            wallet_id: openpleb_common::wallet::WalletId::session(session).as_str(),
            amount_sats: 10_000,
            expires_at: expires,
            offer_id: offer.id,
            purpose: openpleb_common::domain::payout::QuotePurpose::Deposit,
            refund_pubkey: key,
            lock_path: Some("0/0".to_owned()),
        },
    )
    .await
    .expect("quote");
    sqlx::query(
        "update offers set status = 'CANCELLED', deposit_quote_id = 'q-cancelled' where id = $1",
    )
    .bind(offer.id)
    .execute(&mut *tx)
    .await
    .expect("cancel");
    tx.commit().await.expect("commit");

    let dir = tempfile::tempdir().expect("dir");
    let ctx = offline(&pool, dir.path());
    let swept = WatchMintQuote {
        chain: Some("sweep:60".to_owned()),
        ..WatchMintQuote::first("q-cancelled")
    };
    openpleb_worker::jobs::watch_mint_quote::handle(swept, apalis::prelude::Data::new(ctx))
        .await
        .expect("a look that does not ask the mint");
    let (key, run_at): (String, chrono::DateTime<Utc>) =
        sqlx::query_as("select idempotency_key, run_at from apalis.jobs where job_type = $1")
            .bind(queues::WATCH_MINT_QUOTE)
            .fetch_one(&pool)
            .await
            .expect("the next look");
    assert_eq!(key, "sweep:60:q-cancelled:1");
    let last_look = expires + ChronoDuration::from_std(quotes::PAYMENT_GRACE).expect("grace");
    let off = (run_at - last_look).num_seconds().abs();
    assert!(
        off <= 3,
        "next look at {run_at}, the last look is due at {last_look}"
    );
}
