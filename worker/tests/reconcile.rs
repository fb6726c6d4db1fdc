//! Reconciliation against the real mint: wallet operations interrupted the way a crash leaves
//! them on disk are finished or rolled back, proofs no operation owns are settled by NUT-07,
//! overdue releases are enqueued again, and a second run changes nothing.

use std::str::FromStr;
use std::time::Duration;

use cdk::nuts::{CurrencyUnit, State};
use cdk::wallet::types::ProofInfo;
use cdk::wallet::{ReceiveOptions, SendOptions};
use cdk::Amount;
use openpleb_common::db::payouts;
use openpleb_common::domain::payout::PayoutState;
use openpleb_common::jobs::queues;
use openpleb_common::wallet::{Balances, WalletId};
use openpleb_devkit::fixtures;
use openpleb_worker::jobs::{cleanup_wallets, reconcile_wallets};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;

mod common;

use common::{crash, refund, release, unspent, world, world_with_fee};

#[sqlx::test(migrations = false)]
async fn interrupted_operations_are_finished_or_rolled_back(
    _opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let w = world(conn).await;

    // 1. A send interrupted after its proofs were reserved, before the token was made.
    let reserved = w.funded_session(100).await;
    let (raw, conns) = w.raw(&reserved).await;
    let prepared = raw
        .prepare_send(Amount::from(40), SendOptions::default())
        .await
        .expect("prepare");
    drop(prepared);
    crash(raw, conns).await;

    // 2. A token sent and since claimed by its recipient; the wallet still counts it pending.
    let claimed = w.funded_session(100).await;
    let sent = w.wallets.send(&claimed, 30, None).await.expect("send");
    w.wallets.close(&claimed).await.expect("close");
    let recipient = fixtures::memory_wallet(&w.mint.url).await.expect("wallet");
    let got = recipient
        .receive(&sent.token, ReceiveOptions::default())
        .await
        .expect("recipient claims");
    assert_eq!(u64::from(got), 30);

    // 3. A token sent and not claimed yet: it must stay redeemable.
    let unclaimed = w.funded_session(100).await;
    let open_token = w.wallets.send(&unclaimed, 25, None).await.expect("send");
    w.wallets.close(&unclaimed).await.expect("close");

    // 4. Proofs left by operations whose records are gone: one of the wallet's own proofs
    //    reserved by an operation that does not exist, and the proofs of an incoming token
    //    marked pending by a receive that was cut before it wrote its saga.
    let orphaned = w.funded_session(50).await;
    let sender = fixtures::memory_wallet(&w.mint.url).await.expect("sender");
    fixtures::fund_memory_wallet(&sender, &w.mint, 20)
        .await
        .expect("fund sender");
    let incoming = sender
        .prepare_send(Amount::from(20), SendOptions::default())
        .await
        .expect("prepare")
        .confirm(None)
        .await
        .expect("token");
    let (raw, conns) = w.raw(&orphaned).await;
    let own = raw
        .localstore
        .get_proofs(None, None, Some(vec![State::Unspent]), None)
        .await
        .expect("proofs");
    raw.localstore
        .reserve_proofs(own.iter().map(|p| p.y).collect(), &Uuid::new_v4())
        .await
        .expect("reserve under an operation that does not exist");
    // The sender sent nothing else: its sent proofs are the token's.
    let cut_receive = sender
        .get_pending_spent_proofs()
        .await
        .expect("token proofs")
        .into_iter()
        .map(|p| {
            ProofInfo::new_with_operations(
                p,
                raw.mint_url.clone(),
                State::Pending,
                CurrencyUnit::Sat,
                Some(Uuid::new_v4()),
                None,
            )
        })
        .collect::<Result<Vec<_>, _>>()
        .expect("proof infos");
    raw.localstore
        .update_proofs(cut_receive, vec![])
        .await
        .expect("pending token proofs");
    crash(raw, conns).await;

    // A payout recorded twenty minutes ago and never released (its release job is gone).
    let mut tx = w.pool.begin().await.expect("tx");
    let payout_key = cdk::nuts::SecretKey::generate()
        .public_key()
        .x_only_public_key()
        .to_string();
    let session = fixtures::insert_session(&mut tx).await.expect("session");
    let offer = fixtures::insert_offer(&mut tx, session, 1_000, &payout_key)
        .await
        .expect("offer");
    let wallet = WalletId::session(session);
    refund(&mut tx, offer.id, &wallet, (10, &payout_key), "").await;
    sqlx::query("update payouts set created_at = now() - interval '20 minutes'")
        .execute(&mut *tx)
        .await
        .expect("age");
    tx.commit().await.expect("commit");

    let summary = reconcile_wallets::run(&w.ctx).await.expect("reconcile");
    let found = |id: &WalletId| {
        summary
            .reconciled
            .iter()
            .find(|(w, _)| w == id)
            .map(|(_, r)| *r)
            .unwrap_or_else(|| panic!("{id} was reconciled"))
    };

    let r = found(&reserved);
    assert!(
        r.before.reserved >= 40,
        "the interrupted send held its proofs"
    );
    assert_eq!(r.compensated, 1, "the interrupted send was rolled back");
    assert_eq!(r.after, unspent(100));

    let r = found(&claimed);
    assert_eq!(r.before.sent, 30);
    assert_eq!(r.open_sends, 0, "the claimed send is finished");
    assert_eq!(r.after, unspent(70));

    let r = found(&unclaimed);
    assert_eq!(r.open_sends, 1, "the unclaimed send stays open");
    assert_eq!(
        r.after,
        Balances {
            unspent: 75,
            sent: 25,
            ..Balances::default()
        }
    );
    let late = fixtures::memory_wallet(&w.mint.url).await.expect("wallet");
    let got = late
        .receive(&open_token.token, ReceiveOptions::default())
        .await
        .expect("the unclaimed token is still good");
    assert_eq!(u64::from(got), 25);

    let r = found(&orphaned);
    assert_eq!(
        r.orphans_returned, 50,
        "unspent orphans are spendable again"
    );
    assert_eq!(r.orphans_spent, 0);
    assert_eq!(r.after, unspent(50));

    assert_eq!(summary.releases_requeued, 1);
    let jobs: i64 = sqlx::query_scalar(
        "select count(*) from apalis.jobs where job_type = $1 and status = 'Pending'",
    )
    .bind(queues::RELEASE_PAYOUTS)
    .fetch_one(&w.pool)
    .await
    .expect("jobs");
    assert_eq!(jobs, 1, "the overdue release is queued again");

    // The returned sats really are spendable, and the cut receive's token is still its
    // sender's to spend.
    let all = w.wallets.send(&orphaned, 50, None).await.expect("send all");
    assert_eq!(all.amount, 50);
    let got = late
        .receive(&incoming.to_string(), ReceiveOptions::default())
        .await
        .expect("the token of the cut receive is still good");
    assert_eq!(u64::from(got), 20);

    // A second run finds everything settled and changes nothing but what the claim of the
    // open token (just now) settles.
    let again = reconcile_wallets::run(&w.ctx)
        .await
        .expect("reconcile again");
    assert_eq!(
        again.releases_requeued, 0,
        "its release job is still queued"
    );
    for (id, r) in &again.reconciled {
        assert_eq!(r.compensated, 0, "{id}: nothing left to roll back");
        assert_eq!(r.orphans_returned, 0, "{id}: nothing left to return");
        assert_eq!(r.after.reserved, 0, "{id}");
        if id == &unclaimed {
            assert_eq!(r.after.sent, 0, "the late claim is seen");
            assert_eq!(r.after.unspent, 75);
        } else {
            assert_eq!(r.before, r.after, "{id}: unchanged");
        }
    }
    assert!(again.reconciled.len() >= 4);
}

/// Interrupts receives and sends at many points of their run (a task aborted after a delay:
/// before, during or after the mint's swap) and checks after reconciliation that each ended
/// whole: finished (the wallet holds what it received, or the sent token is pending) or rolled
/// back (the wallet holds what it had), never in between, nothing left reserved.
#[sqlx::test(migrations = false)]
async fn operations_cut_at_any_point_end_whole(_opts: PgPoolOptions, conn: PgConnectOptions) {
    let w = world(conn).await;
    let source = fixtures::memory_wallet(&w.mint.url).await.expect("source");
    fixtures::fund_memory_wallet(&source, &w.mint, 4_000)
        .await
        .expect("fund source");
    let id = w.funded_session(1_000).await;
    let mut expected = w.balance(&id).await;
    w.wallets.close(&id).await.expect("close");
    let (mut finished, mut rolled_back, mut sends_made) = (0, 0, 0);
    // Cuts that left work for the reconciliation: sagas it settled, orphans it dropped.
    let mut settled = 0;

    for step in 0..24u64 {
        let cut = Duration::from_micros(step * 1_500);
        // A receive of 10 sats, cut.
        let token = source
            .prepare_send(Amount::from(10), SendOptions::default())
            .await
            .expect("prepare")
            .confirm(None)
            .await
            .expect("token")
            .to_string();
        let (raw, conns) = w.raw(&id).await;
        let task = {
            let raw = raw.clone();
            let token = token.clone();
            tokio::spawn(async move { raw.receive(&token, ReceiveOptions::default()).await })
        };
        let r = w
            .cut_and_reconcile(&id, (task, (raw, conns)), cut, step)
            .await;
        // Did the mint take the token? Only then may the wallet hold it.
        let probe = fixtures::memory_wallet(&w.mint.url).await.expect("probe");
        let taken = match probe.receive(&token, ReceiveOptions::default()).await {
            Ok(_) => false,
            Err(cdk::Error::TokenAlreadySpent) => true,
            Err(e) => panic!("step {step}: probing the token: {e}"),
        };
        // Open sends (tokens awaiting their recipient) count as "recovered" on every run.
        settled += r.recovered.saturating_sub(r.open_sends)
            + r.compensated
            + usize::from(r.orphans_abandoned > 0);
        if taken {
            expected.unspent += 10;
            finished += 1;
        } else {
            rolled_back += 1;
        }
        assert_eq!(
            r.after, expected,
            "step {step} (cut after {cut:?}): receive whole"
        );

        // A send of 7 sats, cut.
        let (raw, conns) = w.raw(&id).await;
        let task = {
            let raw = raw.clone();
            tokio::spawn(async move {
                raw.prepare_send(Amount::from(7), SendOptions::default())
                    .await?
                    .confirm(None)
                    .await
            })
        };
        let r = w
            .cut_and_reconcile(&id, (task, (raw, conns)), cut, step)
            .await;
        assert_eq!(
            r.after.unspent + r.after.sent,
            expected.unspent + expected.sent,
            "step {step} (cut after {cut:?}): a cut send loses nothing"
        );
        assert!(
            r.after.sent == expected.sent || r.after.sent == expected.sent + 7,
            "step {step}: the send either made its token or did not"
        );
        settled += r.recovered.saturating_sub(r.open_sends) + r.compensated;
        if r.after.sent > expected.sent {
            sends_made += 1;
        }
        expected = r.after;
    }
    eprintln!(
        "receives cut: {finished} finished, {rolled_back} rolled back; sends cut: {sends_made} \
         made their token; {settled} interrupted operations settled by reconciliation"
    );
    // The cuts must have hit both sides of the mint's swap, or the test proves little.
    assert!(finished > 0, "some receives finished");
    assert!(
        rolled_back > 0,
        "some receives were cut before the mint took them"
    );
}

/// Two release runs of one offer at once (a retry beside a fresh enqueue, on one worker or
/// two): every payout is paid exactly once and the wallet keeps the rest.
#[sqlx::test(migrations = false)]
async fn two_release_runs_at_once_pay_once(_opts: PgPoolOptions, conn: PgConnectOptions) {
    let w = world(conn).await;
    let ctx = w.ctx.clone();
    let key_sk = cdk::nuts::SecretKey::generate();
    let key = key_sk.public_key().x_only_public_key().to_string();
    for round in 0..3 {
        let (offer_id, wallet) = w
            .owing(
                &key,
                300,
                &[("part-0", 100), ("part-1", 60), ("part-2", 40)],
            )
            .await;
        let job = || release(&ctx, offer_id);
        let (a, b) = tokio::join!(job(), job());
        // The loser of each payout follows the winner's send instead of failing.
        a.expect("first run");
        b.expect("second run");

        let rows = payouts::for_offer(&w.pool, offer_id).await.expect("rows");
        assert_eq!(rows.len(), 3);
        let mut redeemed = 0;
        for p in &rows {
            assert_eq!(p.state, PayoutState::Released, "round {round}");
            let token = p.token.as_deref().expect("token");
            redeemed += fixtures::redeem(&w.mint.url, token, &key_sk)
                .await
                .expect("each token redeems");
        }
        assert_eq!(redeemed, 200, "round {round}: paid exactly what was owed");
        let left = w.wallets.reconcile(&wallet).await.expect("reconcile");
        assert_eq!(
            left.after,
            unspent(100),
            "round {round}: the rest stays, no stray token was made"
        );
    }
}

/// At a mint charging a sat per input proof, an ended session's wallet holding one 1-sat proof
/// holds dust (any token out of it would be worth nothing): it is deleted. One holding 8 sats
/// is swept to the payout key, the swap's fee paid out of the sweep.
#[sqlx::test(migrations = false)]
async fn cleanup_deletes_dust_and_sweeps_the_rest_net_of_fees(
    _opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let w = world_with_fee(conn, 1_000).await;
    let ctx = w.ctx.clone();
    let key_sk = cdk::nuts::SecretKey::generate();
    let key = key_sk.public_key().x_only_public_key().to_string();
    let mut wallets = Vec::new();
    for sats in [1u64, 8] {
        let mut tx = w.pool.begin().await.expect("tx");
        let session = fixtures::insert_session(&mut tx).await.expect("session");
        // Ended without a trade: nothing in the ledger backs the wallet's sats.
        let cancelled = fixtures::cancelled_offer(&mut tx, session, 1_000, &key).await;
        cancelled.expect("cancelled offer");
        tx.commit().await.expect("commit");
        let wallet = WalletId::session(session);
        w.fund_and_close(&wallet, sats).await;
        wallets.push(wallet);
    }
    sqlx::query(
        "update sessions set created_at = now() - interval '2 hours', expires_at = now() - interval '1 hour'",
    )
    .execute(&w.pool)
    .await
    .expect("expire");

    let first = cleanup_wallets::run(&ctx, 10).await.expect("cleanup");
    assert!(
        first.contains(&cleanup_wallets::Cleaned::Deleted),
        "{first:?}"
    );
    assert!(
        first.contains(&cleanup_wallets::Cleaned::SweptAndDeleted),
        "swept, released and deleted in one run: {first:?}"
    );
    assert!(!w.wallets.exists(&wallets[0]), "the dust wallet is gone");
    assert!(!w.wallets.exists(&wallets[1]), "the swept wallet is gone");

    let offer: Uuid = sqlx::query_scalar("select offer_id from payouts where purpose = 'sweep'")
        .fetch_one(&w.pool)
        .await
        .expect("sweep");
    // The backstop job's run finds the sweep released and changes nothing.
    release(&ctx, offer).await.expect("release");
    let sweep = payouts::for_offer(&w.pool, offer).await.expect("payouts");
    assert_eq!(sweep[0].state, PayoutState::Released);
    assert_eq!(sweep.len(), 1);
    assert_eq!(sweep[0].amount_sats, 8);
    let fee = u64::try_from(sweep[0].fee_sats).expect("fee");
    assert!(
        fee >= 1,
        "a P2PK sweep swaps, and the swap costs a sat per input"
    );
    let token = sweep[0].token.as_deref().expect("token");
    let value: u64 = cdk::nuts::Token::from_str(token)
        .expect("token")
        .value()
        .expect("value")
        .into();
    assert_eq!(
        value + fee,
        8,
        "the fee came out of the sweep, not out of thin air"
    );
    let got = fixtures::redeem(&w.mint.url, token, &key_sk)
        .await
        .expect("redeem");
    // Redeeming costs the recipient the fee of the token's proofs, on their side.
    assert!((1..value).contains(&got), "redeemed {got} of {value}");

    let second = cleanup_wallets::run(&ctx, 10).await.expect("cleanup");
    assert_eq!(second, vec![], "nothing is left to clean");
}

/// A payout that cannot go out (here: more than its wallet holds) fails its run, and the run
/// is retried, but it does not hold up the offer's other payouts.
#[sqlx::test(migrations = false)]
async fn one_stuck_payout_does_not_hold_up_the_others(
    _opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let w = world(conn).await;
    let ctx = w.ctx.clone();
    let key = cdk::nuts::SecretKey::generate()
        .public_key()
        .x_only_public_key()
        .to_string();
    let (offer_id, wallet) = w.owing(&key, 100, &[("first", 500), ("second", 60)]).await;

    let run = release(&ctx, offer_id).await;
    assert!(run.is_err(), "the run fails, so it is retried");
    let rows = payouts::for_offer(&w.pool, offer_id).await.expect("rows");
    let state = |sats: i64| {
        rows.iter()
            .find(|p| p.amount_sats == sats)
            .map(|p| p.state)
            .expect("payout")
    };
    assert_eq!(state(500), PayoutState::Recorded);
    assert_eq!(state(60), PayoutState::Released, "the payable one went out");
    let left = w.wallets.balance(&wallet).await.expect("balance");
    assert_eq!(
        left.unspent, 40,
        "nothing of the stuck payout left the wallet"
    );
}

/// A session whose fund request was cut (the token perhaps received, the deposit not yet
/// booked) keeps its wallet until the reconciliation has settled the intent: otherwise the
/// cleanup's sweep and the intent's refund would both claim the same sats.
#[sqlx::test(migrations = false)]
async fn an_open_fund_intent_keeps_its_wallet(_opts: PgPoolOptions, conn: PgConnectOptions) {
    let pool = fixtures::test_pool(conn).await.expect("pool");
    let mut c = pool.acquire().await.expect("conn");
    let session = fixtures::insert_session(&mut c).await.expect("session");
    let key = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
    let offer = fixtures::insert_offer(&mut c, session, 1_000, key)
        .await
        .expect("offer");
    drop(c);
    for sql in [
        "update offers set status = 'CANCELLED' where id = $1",
        "update sessions set ended_at = now() where id = (select maker_session_id from offers where id = $1)",
    ] {
        sqlx::query(sql).bind(offer.id).execute(&pool).await.expect("update");
    }
    let candidates = || async {
        openpleb_common::db::sessions::cleanup_candidates(&pool, 100)
            .await
            .expect("candidates")
    };
    assert!(
        candidates().await.contains(&session),
        "nothing else keeps it"
    );
    sqlx::query(
        "insert into fund_intents (id, offer_id, wallet_id, token_ys, ys_hash, value_sats)
         values ($1, $2, session_wallet_id($3), array['02aa'], repeat('ab', 32), 1000)",
    )
    .bind(Uuid::new_v4())
    .bind(offer.id)
    .bind(session)
    .execute(&pool)
    .await
    .expect("intent");
    assert!(
        !candidates().await.contains(&session),
        "the open intent keeps it"
    );
    sqlx::query("update fund_intents set state = 'ABANDONED', settled_at = now()")
        .execute(&pool)
        .await
        .expect("settle");
    assert!(candidates().await.contains(&session), "settled, it may go");
}
