//! A payout locked to its recipient's key (P2PK), cut at any point of its send and released
//! again, is delivered exactly once, and the wallet's other payouts still get all of theirs.
//!
//! The locked send is the wallet's own swap with outputs drawn and written down before the
//! mint is asked (`common/src/wallet/locked.rs`): a retry after any cut, including one during
//! the swap's round trip (the mint signed, the wallet never stored the outputs), delivers the
//! same token, never a second payment out of what the other payouts are owed. On cdk 0.18.3's
//! own locked send the retry paid twice ("Token Already Spent" for the other payout), and a cut
//! during the round trip lost the payout.

use std::str::FromStr;

use cdk::nuts::{SpendingConditions, State, Token};
use cdk::wallet::SendOptions;
use cdk::Amount;
use openpleb_common::db::payouts;
use openpleb_common::domain::keys::XOnlyKey;
use openpleb_common::domain::payout::PayoutState;
use openpleb_common::wallet::locked;
use openpleb_devkit::fixtures;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::time::Duration;

mod common;

use common::{crash, release, world};

#[sqlx::test(migrations = false)]
async fn a_locked_payout_cut_mid_send_is_paid_once(_opts: PgPoolOptions, conn: PgConnectOptions) {
    let w = world(conn).await;
    let ctx = w.ctx.clone();
    let key_sk = cdk::nuts::SecretKey::generate();
    let key = key_sk.public_key().x_only_public_key().to_string();
    let lock = XOnlyKey::from_str(&key).expect("key");
    // Sends cut before they returned their token, and those of them cut after the mint's swap
    // (the case this is about).
    let (mut cut_short, mut swapped_when_cut) = (0, 0);

    for step in 0..16u64 {
        let cut = Duration::from_micros(step * 2_000);
        // 200 sats in, 100 and 60 owed: a second payment of the 100 leaves too little for 60.
        let (offer_id, wallet) = w.owing(&key, 200, &[("first", 100), ("second", 60)]).await;
        let rows = payouts::for_offer(&w.pool, offer_id).await.expect("rows");
        let first = rows.iter().find(|p| p.amount_sats == 100).expect("first");
        w.wallets.close(&wallet).await.expect("close");

        // The release of the first payout as the job does it (operation recorded, then the
        // send confirmed), cut after `cut`, the process gone.
        let (raw, conns) = w.raw(&wallet).await;
        let opts = SendOptions {
            conditions: Some(SpendingConditions::new_p2pk(lock.to_lock_key(), None)),
            ..Default::default()
        };
        let (sending, started) = tokio::sync::oneshot::channel();
        let task = {
            let (raw, pool, payout) = (raw.clone(), w.pool.clone(), first.id);
            tokio::spawn(async move {
                // As the release does it: cdk's preparation picks the inputs, the operation is
                // recorded, then the wallet's own locked swap.
                let prepared = raw
                    .prepare_send(Amount::from(100), opts)
                    .await
                    .expect("prepare");
                let inputs = prepared.proofs();
                prepared.cancel().await.expect("cancel");
                let op = uuid::Uuid::new_v4().to_string();
                assert!(payouts::set_operation(&pool, payout, None, &op)
                    .await
                    .expect("record operation"));
                let _ = sending.send(inputs.clone());
                locked::send(&raw, &op, &lock, 100, inputs)
                    .await
                    .map(|_| ())
            })
        };
        let inputs = started.await.expect("the send was prepared and recorded");
        tokio::time::sleep(cut).await;
        task.abort();
        let was_cut = !matches!(task.await, Ok(Ok(())));
        crash(raw, conns).await;
        if was_cut {
            cut_short += 1;
            let probe = fixtures::memory_wallet(&w.mint.url).await.expect("probe");
            let states = probe.check_proofs_spent(inputs).await.expect("states");
            if states.iter().any(|s| s.state == State::Spent) {
                swapped_when_cut += 1;
            }
        }

        // The retry: both payouts go out, the first with the token its cut send made.
        release(&ctx, offer_id)
            .await
            .unwrap_or_else(|e| panic!("step {step}: release: {e}"));
        let rows = payouts::for_offer(&w.pool, offer_id).await.expect("rows");
        let mut redeemed = 0;
        for p in &rows {
            assert_eq!(
                p.state,
                PayoutState::Released,
                "step {step}: {}",
                p.amount_sats
            );
            let token = p.token.as_deref().expect("token");
            let value: u64 = Token::from_str(token)
                .expect("token parses")
                .value()
                .expect("value")
                .into();
            assert_eq!(
                value,
                u64::try_from(p.amount_sats).expect("sats"),
                "step {step}: {} carries what it is owed",
                p.amount_sats
            );
            redeemed += fixtures::redeem(&w.mint.url, token, &key_sk)
                .await
                .unwrap_or_else(|e| panic!("step {step}: {} redeems: {e}", p.amount_sats));
        }
        assert_eq!(redeemed, 160, "step {step}: paid exactly what was owed");
        let after = w.wallets.reconcile(&wallet).await.expect("reconcile");
        assert_eq!(
            after.after.unspent, 40,
            "step {step} (cut after {cut:?}): the rest stays in the wallet"
        );
        assert_eq!(
            after.orphans_left, 0,
            "step {step}: nothing left for a person"
        );
        w.wallets.close(&wallet).await.expect("close");
    }
    eprintln!(
        "locked sends cut before they returned their token: {cut_short} of 16, \
         {swapped_when_cut} of them after the mint's swap; every one delivered once"
    );
    assert!(
        swapped_when_cut > 0,
        "some cuts fell between the mint's swap and the stored token"
    );
}
