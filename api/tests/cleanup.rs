//! Ended sessions and their wallets, against the real test mint: a wallet goes once nothing
//! can still move money through it (no live offer, no payout to release, no invoice that can
//! still be paid), and a watcher whose wallet is gone stops and says so instead of retrying
//! forever. With `WALLETS_ARCHIVE_DIR` set, the wallets of a disputed trade are archived first
//! and the archives pruned after `WALLET_ARCHIVE_DAYS`. The mint pays invoices only when a test
//! says so.

mod common;

use std::time::Duration;

use common::dispute::{mark_issue, taker_answers, to_receipt};
use common::{balanced, offer_with_invoice, Harness, Session};
use openpleb_common::wallet::WalletId;
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::ConnectOptions;
use uuid::Uuid;

async fn session_id(h: &Harness, s: &Session) -> Uuid {
    let bat = openpleb_common::mint::ParsedBat::parse(&s.bat).expect("bat");
    sqlx::query_scalar("select id from sessions where bat_hash = $1")
        .bind(bat.hash.as_slice())
        .fetch_one(&h.pool)
        .await
        .expect("session")
}

async fn wait_gone(h: &Harness, wallet: &WalletId, gone: bool) {
    for _ in 0..80 {
        if h.worker_wallets.exists(wallet) != gone {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!(
        "wallet {wallet} {} removed",
        if gone { "was not" } else { "was" }
    );
}

/// Session expiry: a settled session's wallet is deleted; one backing a live offer is kept
/// until the offer ends; idle sats with no offer to account for them are swept back to the
/// session's payout key before the wallet goes.
#[sqlx::test(migrations = false)]
async fn expired_sessions_lose_their_wallets_but_never_money(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    use openpleb_common::wallet::MintOutcome;
    let h = Harness::start_configured(opts, conn, |_| {}).await;
    let provider = h.provider().await;

    // A: a cancelled, refunded offer.
    let a = h.session().await;
    let (a_offer, invoice, deposit, _) = offer_with_invoice(&h, &a, provider).await;
    h.pay(&invoice, deposit).await;
    h.wait_status(a_offer, &a, "INVOICE_PAID").await;
    h.cancel(a_offer, &a).await;
    h.released_payouts(a_offer, &a).await;
    // B: an offer still in the book.
    let b = h.session().await;
    let (b_offer, invoice, deposit, b_key) = offer_with_invoice(&h, &b, provider).await;
    h.pay(&invoice, deposit).await;
    h.wait_status(b_offer, &b, "INVOICE_PAID").await;
    // C: stray sats in the wallet and an offer that never got funded, whose deposit invoice
    // can no longer be paid.
    let c = h.session().await;
    let (c_offer, _, _, c_key) = offer_with_invoice(&h, &c, provider).await;
    h.cancel(c_offer, &c).await;
    sqlx::query(
        "update wallet_quotes set expires_at = now() - interval '5 minutes' where offer_id = $1",
    )
    .bind(c_offer)
    .execute(&h.pool)
    .await
    .expect("expire the quote");
    let (a_id, b_id, c_id) = (
        session_id(&h, &a).await,
        session_id(&h, &b).await,
        session_id(&h, &c).await,
    );
    let c_wallet = WalletId::session(c_id);
    let quote = h
        .worker_wallets
        .create_mint_quote(&c_wallet, 321)
        .await
        .expect("quote");
    h.pay(&quote.request, 321).await;
    let mut minted = false;
    for _ in 0..40 {
        if let MintOutcome::Issued(_) = h
            .worker_wallets
            .mint_quote(&c_wallet, &quote.quote_id)
            .await
            .expect("mint")
        {
            minted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(minted);
    h.worker_wallets.close(&c_wallet).await.expect("close");

    for id in [a_id, b_id, c_id] {
        h.expire_session(id).await;
    }
    wait_gone(&h, &WalletId::session(a_id), true).await;
    wait_gone(&h, &c_wallet, true).await;
    // C's stray sats went back to its payout key.
    let swept: Option<String> = sqlx::query_scalar(
        "select token from payouts where source_wallet = $1 and purpose = 'sweep' and state = 'RELEASED'",
    )
    .bind(c_wallet.as_str())
    .fetch_optional(&h.pool)
    .await
    .expect("sweep");
    let swept = json!([{"token": swept.expect("a released sweep")}]);
    assert_eq!(h.redeem(swept.as_array().expect("list"), &c_key).await, 321);
    // B's wallet backs a live offer: kept through several cleanups.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        h.worker_wallets.exists(&WalletId::session(b_id)),
        "a live offer keeps its wallet"
    );
    // The offer ends (its lifetime lapses): refunded, then the wallet goes.
    sqlx::query("update offers set expires_at = now() - interval '1 second' where id = $1")
        .bind(b_offer)
        .execute(&h.pool)
        .await
        .expect("lapse");
    // B's session is gone; its payout key still fetches the refund.
    let refund = h.payouts_by_key(b_offer, &b_key).await;
    assert_eq!(h.redeem(&refund, &b_key).await, deposit);
    wait_gone(&h, &WalletId::session(b_id), true).await;
    balanced(&h, 3).await;
    // Cleaned sessions are marked, so the cleanup moves on to newer ones.
    let mut marked = 0i64;
    for _ in 0..40 {
        marked =
            sqlx::query_scalar("select count(*) from sessions where wallet_removed_at is not null")
                .fetch_one(&h.pool)
                .await
                .expect("count");
        if marked == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(marked, 3);
    h.stop().await;
}

/// Item 1: a maker cancels an unfunded offer and its session ends, but the deposit invoice can
/// still be paid at the mint: the wallet is kept, and when the maker pays after all, the sats
/// are minted and refunded to the maker's payout key. Once nothing can arrive any more, the
/// wallet goes.
#[sqlx::test(migrations = false)]
async fn a_payable_invoice_keeps_its_wallet(opts: PgPoolOptions, conn: PgConnectOptions) {
    let h = Harness::start_configured(opts, conn, |_| {}).await;
    let provider = h.provider().await;
    let maker = h.session().await;
    let (id, invoice, deposit, key) = offer_with_invoice(&h, &maker, provider).await;
    h.cancel(id, &maker).await;
    let session = session_id(&h, &maker).await;
    let wallet = WalletId::session(session);
    h.expire_session(session).await;
    // Several cleanup runs (every 2 s here) pass over it.
    tokio::time::sleep(Duration::from_secs(6)).await;
    // The deposit quote is locked to a key of the workers' quote-lock branch, made by the api
    // without any wallet: it needs no file to be minted. A wallet that exists is kept while
    // the invoice can be paid.
    let path = h.lock_path(id).await;
    assert!(
        h.worker_wallets.exists(&wallet) || path.is_some(),
        "the invoice keeps its wallet, or needs none"
    );

    h.pay(&invoice, deposit).await;
    let refund = h.payouts_by_key(id, &key).await;
    assert_eq!(refund[0]["purpose"], "late_refund");
    assert_eq!(h.redeem(&refund, &key).await, deposit);
    wait_gone(&h, &wallet, true).await;
    balanced(&h, 1).await;
    h.stop().await;
}

/// Item 1: should a quote's wallet be gone all the same (a lost volume, an operator's hand),
/// its watcher marks it ORPHANED and stops instead of failing on every retry, and the admin
/// alerts name it.
#[sqlx::test(migrations = false)]
async fn a_watcher_whose_wallet_is_gone_stops_and_alerts(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    use openpleb_common::wallet::Funds;
    let h = Harness::start_configured(opts, conn, |_| {}).await;
    let provider = h.provider().await;
    let maker = h.session().await;
    let (id, _, deposit, _) = offer_with_invoice(&h, &maker, provider).await;
    let wallet = WalletId::session(session_id(&h, &maker).await);
    // A quote locked to a key of the workers' quote-lock branch (what `POST /offers` makes
    // now) survives a lost file: the minting worker recreates the wallet. A quote the wallet
    // made itself (recorded without a lock) does not: that is the case here.
    sqlx::query("update wallet_quotes set lock_path = null where offer_id = $1")
        .bind(id)
        .execute(&h.pool)
        .await
        .expect("a wallet's own quote");
    h.worker_wallets
        .delete(
            &wallet,
            Funds::AccountedFor("test: a lost wallet".to_owned()),
        )
        .await
        .expect("delete");

    let mut state = String::new();
    for _ in 0..40 {
        state = sqlx::query_scalar("select state from wallet_quotes where offer_id = $1")
            .bind(id)
            .fetch_one(&h.pool)
            .await
            .expect("quote");
        if state == "ORPHANED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(state, "ORPHANED");
    assert!(
        !h.worker_wallets.exists(&wallet),
        "no empty wallet opened in its place"
    );
    let a = h.alerts().await;
    assert_eq!(a["ok"], false, "{a}");
    let orphaned = a["orphanedQuotes"].as_array().expect("orphaned");
    assert_eq!(orphaned.len(), 1, "{a}");
    assert_eq!(orphaned[0]["offerId"], id.to_string());
    assert_eq!(orphaned[0]["amountSats"], deposit);
    // The watcher is done with it: no job of it waits, retries or died.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let watching: i64 = sqlx::query_scalar(
        "select count(*) from apalis.jobs
          where job_type like '%watch%' and status not in ('Done')",
    )
    .fetch_one(&h.pool)
    .await
    .expect("jobs");
    assert_eq!(watching, 0);
    h.stop().await;
}

/// Wallet archives: with `WALLETS_ARCHIVE_DIR` set, the wallets of both parties of a trade that
/// went through an issue are copied there before the cleanup deletes them: whole SQLite files
/// holding the wallet's history. A plain completed trade's wallets go without a copy. Archives
/// older than `WALLET_ARCHIVE_DAYS` are pruned by the retention job.
#[sqlx::test(migrations = false)]
async fn disputed_wallets_are_archived_before_they_go(opts: PgPoolOptions, conn: PgConnectOptions) {
    use openpleb_common::wallet::archive::archive_path;
    let archive = tempfile::tempdir().expect("archive dir");
    let dir = archive.path().to_path_buf();
    let h =
        Harness::start_with_wallet_settings(opts, conn, move |w| w.archive_dir = Some(dir)).await;
    let provider = h.provider().await;

    // Through an issue the taker forfeits: MAKER_WINS, settled without an admin.
    let t = to_receipt(&h, provider).await;
    mark_issue(&h, &t).await.assert_status_is_ok();
    h.wait_status(t.id, &t.taker, "MARKED_WITH_ISSUE").await;
    taker_answers(&h, &t, "FORFEIT").await.assert_status_is_ok();
    h.wait_status(t.id, &t.maker, "RESOLVED").await;
    h.released_payouts(t.id, &t.maker).await;
    // A plain completed trade.
    let maker = h.session().await;
    let taker = h.session().await;
    let (plain, _) = h.funded_offer(&maker, provider).await;
    h.trade_to_completion(plain, &maker, &taker).await;
    h.released_payouts(plain, &taker).await;
    h.released_payouts(plain, &maker).await;

    let disputed = [
        session_id(&h, &t.maker).await,
        session_id(&h, &t.taker).await,
    ];
    let completed = [session_id(&h, &maker).await, session_id(&h, &taker).await];
    for id in disputed.iter().chain(&completed) {
        h.expire_session(*id).await;
    }
    for id in disputed.iter().chain(&completed) {
        wait_gone(&h, &WalletId::session(*id), true).await;
    }
    assert_archived_whole(
        archive.path(),
        &disputed,
        "only the disputed trade's wallets are archived",
    )
    .await;
    // Past WALLET_ARCHIVE_DAYS (90) an archive goes; a younger one stays.
    let old = archive_path(archive.path(), &WalletId::session(disputed[0]));
    let young = archive_path(archive.path(), &WalletId::session(disputed[1]));
    std::fs::File::options()
        .write(true)
        .open(&old)
        .and_then(|f| {
            f.set_modified(std::time::SystemTime::now() - Duration::from_secs(91 * 86_400))
        })
        .expect("age the archive");
    let pruned = openpleb_worker::jobs::prune::run(&h.trade_ctx())
        .await
        .expect("prune");
    assert_eq!(pruned.wallet_archives, 1);
    assert!(!old.exists() && young.exists());
    h.stop().await;
}

/// Wallet archives, the other reason to archive: a plain completed trade on whose offer an
/// admin acted is archived like a disputed one, and the admin action alone is why (an
/// identical trade beside it, untouched, goes without a copy). Today the only admin write
/// naming an offer is a dispute's resolution, which comes with a dispute row; the action is
/// recorded here through the same `admin_actions::record` every admin write uses, so the
/// cleanup's admin-action test is what decides.
#[sqlx::test(migrations = false)]
async fn wallets_of_an_admin_touched_trade_are_archived(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let archive = tempfile::tempdir().expect("archive dir");
    let dir = archive.path().to_path_buf();
    let h =
        Harness::start_with_wallet_settings(opts, conn, move |w| w.archive_dir = Some(dir)).await;
    let provider = h.provider().await;

    let mut trades = Vec::new();
    for _ in 0..2 {
        let maker = h.session().await;
        let taker = h.session().await;
        let (offer, _) = h.funded_offer(&maker, provider).await;
        h.trade_to_completion(offer, &maker, &taker).await;
        h.released_payouts(offer, &taker).await;
        h.released_payouts(offer, &maker).await;
        let sessions = [session_id(&h, &maker).await, session_id(&h, &taker).await];
        trades.push((offer, sessions));
    }
    let (touched, touched_sessions) = trades[0];
    let (_, plain_sessions) = trades[1];
    let mut tx = h.pool.begin().await.expect("tx");
    openpleb_common::db::admin_actions::record(
        &mut tx,
        "admin",
        "note_offer",
        &touched.to_string(),
        Some("looked into after a support request"),
    )
    .await
    .expect("record");
    tx.commit().await.expect("commit");
    let disputes: i64 = sqlx::query_scalar("select count(*) from disputes")
        .fetch_one(&h.pool)
        .await
        .expect("disputes");
    assert_eq!(disputes, 0, "no dispute: the admin action alone decides");

    for id in touched_sessions.iter().chain(&plain_sessions) {
        h.expire_session(*id).await;
    }
    for id in touched_sessions.iter().chain(&plain_sessions) {
        wait_gone(&h, &WalletId::session(*id), true).await;
    }
    assert_archived_whole(
        archive.path(),
        &touched_sessions,
        "only the admin-touched trade's wallets",
    )
    .await;
    h.stop().await;
}

/// The archive holds exactly the wallets of `sessions`, each a whole wallet database: the
/// deposit or bond minted in, the settlement sent out.
async fn assert_archived_whole(dir: &std::path::Path, sessions: &[Uuid], why: &str) {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .expect("archive")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut wanted: Vec<String> = sessions
        .iter()
        .map(|id| format!("{}.db", WalletId::session(*id)))
        .collect();
    wanted.sort();
    assert_eq!(files, wanted, "{why}");
    for id in sessions {
        let copy = openpleb_common::wallet::archive::archive_path(dir, &WalletId::session(*id));
        let mut db = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&copy)
            .read_only(true)
            .connect()
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", copy.display()));
        let history: i64 = sqlx::query_scalar("select count(*) from transactions")
            .fetch_one(&mut db)
            .await
            .expect("transactions");
        assert!(history >= 2, "{}: {history} transactions", copy.display());
    }
}
