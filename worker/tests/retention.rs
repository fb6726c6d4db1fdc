//! The retention job: each table it prunes shrinks after a run, and nothing still needed goes
//! (jobs that may run again, events of live or recently settled offers, nonces inside the
//! replay window, recent cron slots, checks of live wallets, recent wallet archives). A second
//! run deletes nothing.

use std::sync::Arc;

use openpleb_common::jobs::{enqueue, Enqueued, ReleasePayouts};
use openpleb_devkit::fixtures::{insert_offer, insert_session, test_pool};
use openpleb_worker::jobs::prune::{run, Pruned};
use openpleb_worker::WorkerContext;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use uuid::Uuid;

const KEY: &str = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";

async fn count(pool: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.expect(sql)
}

async fn exec(pool: &PgPool, sql: &'static str) {
    sqlx::query(sql).execute(pool).await.expect(sql);
}

/// Enqueues a job and sets its state and age (days since it finished or was due).
async fn job(pool: &PgPool, status: &str, attempts: i32, days: i64) -> String {
    let mut conn = pool.acquire().await.expect("conn");
    let Enqueued::New(id) = enqueue(
        &mut conn,
        &ReleasePayouts {
            offer_id: Uuid::new_v4(),
        },
    )
    .await
    .expect("enqueue") else {
        panic!("a new job")
    };
    sqlx::query(
        "update apalis.jobs set status = $2, attempts = $3,
                run_at = now() - make_interval(days => $4::int),
                done_at = case when $2 in ('Done', 'Killed', 'Failed')
                               then now() - make_interval(days => $4::int) end
          where id = $1",
    )
    .bind(&id)
    .bind(status)
    .bind(attempts)
    .bind(i32::try_from(days).expect("days"))
    .execute(pool)
    .await
    .expect("age the job");
    id
}

/// An offer of a fresh session in `status` since `days` ago, with three events.
async fn offer(pool: &PgPool, status: &str, days: i64) -> Uuid {
    let mut conn = pool.acquire().await.expect("conn");
    let session = insert_session(&mut conn).await.expect("session");
    let offer = insert_offer(&mut conn, session, 10_000, KEY)
        .await
        .expect("offer");
    sqlx::query(
        "update offers set status = $2, state_entered_at = now() - make_interval(days => $3::int)
          where id = $1",
    )
    .bind(offer.id)
    .bind(status)
    .bind(i32::try_from(days).expect("days"))
    .execute(pool)
    .await
    .expect("age the offer");
    for s in ["CREATED", "INVOICE_PAID", status] {
        sqlx::query("insert into offer_events (offer_id, status) values ($1, $2)")
            .bind(offer.id)
            .bind(s)
            .execute(pool)
            .await
            .expect("event");
    }
    offer.id
}

#[sqlx::test(migrations = false)]
async fn each_table_shrinks_and_nothing_needed_goes(_opts: PgPoolOptions, conn: PgConnectOptions) {
    let pool = test_pool(conn).await.expect("pool");
    let dir = tempfile::tempdir().expect("dir");
    let archive = tempfile::tempdir().expect("archive dir");
    let config = openpleb_devkit::test_config("postgres://unused", "http://127.0.0.1:9");
    let mut settings = openpleb_devkit::test_wallets_config(dir.path());
    assert_eq!(
        settings.archive_keep.as_secs(),
        90 * 86_400,
        "WALLET_ARCHIVE_DAYS default"
    );
    settings.archive_dir = Some(archive.path().to_path_buf());
    let wallets = openpleb_devkit::test_worker_wallets(pool.clone(), &config, &settings);
    let ctx = WorkerContext::from_config(pool.clone(), wallets, Arc::new(config));
    let r = &ctx.config.retention;
    assert_eq!(
        r.done_jobs.as_secs(),
        7 * 86_400,
        "RETENTION_JOBS_DAYS default"
    );
    assert_eq!(
        r.dead_jobs.as_secs(),
        30 * 86_400,
        "RETENTION_DEAD_JOBS_DAYS default"
    );

    // Jobs: old done and long-dead go; recent done, recently dead, and anything that may still
    // run (pending, or failed with attempts left) stay, however old.
    let old_done = job(&pool, "Done", 1, 8).await;
    let recent_done = job(&pool, "Done", 1, 1).await;
    let long_dead = job(&pool, "Killed", 1, 31).await;
    let out_of_attempts = job(&pool, "Failed", 25, 31).await;
    let recently_dead = job(&pool, "Killed", 1, 8).await;
    let pending = job(&pool, "Pending", 0, 40).await;
    let retrying = job(&pool, "Failed", 3, 40).await;

    // Offer events: of an offer cancelled 31 days ago they go; of one expired yesterday, and
    // of a live offer untouched for 60 days, they stay.
    let settled_long_ago = offer(&pool, "CANCELLED", 31).await;
    let settled_recently = offer(&pool, "EXPIRED", 1).await;
    let live = offer(&pool, "INVOICE_PAID", 60).await;

    // Nonces: one outside the replay window, one inside.
    exec(
        &pool,
        "insert into registration_nonces (nonce, seen_at) values
        ('old-nonce-0123456789', now() - interval '10 minutes'),
        ('new-nonce-0123456789', now() - interval '1 minute')",
    )
    .await;
    // Cron slots: three days old, and this hour's.
    exec(
        &pool,
        "insert into cron_slots (job, slot) values
        ('openpleb.prune', now() - interval '3 days'),
        ('openpleb.prune', date_trunc('hour', now()))",
    )
    .await;
    // Wallet checks: of a removed session wallet (goes), a live one and the treasury (stay).
    let mut c = pool.acquire().await.expect("conn");
    let removed = insert_session(&mut c).await.expect("session");
    let alive = insert_session(&mut c).await.expect("session");
    drop(c);
    sqlx::query("update sessions set wallet_removed_at = now() where id = $1")
        .bind(removed)
        .execute(&pool)
        .await
        .expect("remove");
    sqlx::query(
        "insert into wallet_checks (wallet_id, checked_at) values
            (session_wallet_id($1), now()), (session_wallet_id($2), now()), ('treasury', now())",
    )
    .bind(removed)
    .bind(alive)
    .execute(&pool)
    .await
    .expect("checks");

    let before = [
        count(&pool, "select count(*) from apalis.jobs").await,
        count(&pool, "select count(*) from offer_events").await,
        count(&pool, "select count(*) from registration_nonces").await,
        count(&pool, "select count(*) from cron_slots").await,
        count(&pool, "select count(*) from wallet_checks").await,
    ];
    // Wallet archives: one archived 91 days ago goes, one from yesterday stays.
    let old_archive = archive.path().join("session_old.db");
    let new_archive = archive.path().join("session_new.db");
    for (path, days) in [(&old_archive, 91), (&new_archive, 1)] {
        std::fs::write(path, b"archived wallet").expect("archive");
        std::fs::File::options()
            .write(true)
            .open(path)
            .and_then(|f| {
                f.set_modified(
                    std::time::SystemTime::now() - std::time::Duration::from_secs(days * 86_400),
                )
            })
            .expect("age the archive");
    }

    let pruned = run(&ctx).await.expect("prune");
    assert_eq!(
        pruned,
        Pruned {
            jobs: 3,
            offer_events: 3,
            nonces: 1,
            cron_slots: 1,
            wallet_checks: 1,
            notify_targets: 0,
            wallet_archives: 1,
            trade_data: 1,
            // The fixtures write payment details in plaintext, as rows were before sealing.
            resealed: 2,
        }
    );
    assert!(
        !old_archive.exists(),
        "an archive past WALLET_ARCHIVE_DAYS goes"
    );
    assert!(new_archive.exists(), "a recent archive stays");
    let after = [
        count(&pool, "select count(*) from apalis.jobs").await,
        count(&pool, "select count(*) from offer_events").await,
        count(&pool, "select count(*) from registration_nonces").await,
        count(&pool, "select count(*) from cron_slots").await,
        count(&pool, "select count(*) from wallet_checks").await,
    ];
    for (b, a) in before.iter().zip(after) {
        assert!(a < *b, "every table shrinks: {before:?} -> {after:?}");
    }

    // What stays.
    let jobs_left: Vec<String> = sqlx::query_scalar("select id from apalis.jobs order by id")
        .fetch_all(&pool)
        .await
        .expect("jobs");
    for kept in [&recent_done, &recently_dead, &pending, &retrying] {
        assert!(jobs_left.contains(kept), "job {kept} must stay");
    }
    for gone in [&old_done, &long_dead, &out_of_attempts] {
        assert!(!jobs_left.contains(gone), "job {gone} must go");
    }
    let events = |id: Uuid| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("select count(*) from offer_events where offer_id = $1")
                .bind(id)
                .fetch_one(&pool)
                .await
                .expect("events")
        }
    };
    assert_eq!(events(settled_long_ago).await, 0);
    assert_eq!(events(settled_recently).await, 3);
    assert_eq!(events(live).await, 3);
    assert_eq!(
        count(
            &pool,
            "select count(*) from registration_nonces where nonce = 'new-nonce-0123456789'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &pool,
            "select count(*) from cron_slots where slot > now() - interval '1 day'"
        )
        .await,
        1
    );
    let checks: Vec<String> =
        sqlx::query_scalar("select wallet_id from wallet_checks order by wallet_id")
            .fetch_all(&pool)
            .await
            .expect("checks");
    assert_eq!(checks.len(), 2);
    assert!(checks.contains(&"treasury".to_owned()));

    // Nothing is left for a second run.
    assert_eq!(run(&ctx).await.expect("prune again"), Pruned::default());
}
