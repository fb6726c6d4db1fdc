//! Interrupted wallet operations that cdk 0.18.3's recovery fails on at every open: the mint
//! never signed their outputs (a mint request another attempt already served; a swap whose
//! inputs the mint had already spent elsewhere). The open abandons them, and the quote or the
//! input proofs they held go back to the wallet, or are dropped when the mint spent them.

use cdk::amount::SplitTarget;
use cdk::nuts::{PreMintSecrets, SwapRequest};
use cdk::wallet::types::{
    IssueSagaState, MintOperationData, OperationData, SwapOperationData, SwapSagaState, WalletSaga,
    WalletSagaState,
};
use cdk::Amount;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;

mod common;

use common::{crash, unspent, world};

/// Blinded messages for `sats` with random secrets the mint has never seen.
async fn fresh_outputs(w: &cdk::wallet::Wallet, sats: u64) -> PreMintSecrets {
    let keyset = w.active_keyset().await.expect("keyset");
    let fees = w
        .get_keyset_fees_and_amounts_by_id(keyset.id)
        .await
        .expect("fees");
    PreMintSecrets::random(
        keyset.id,
        Amount::from(sats),
        &SplitTarget::default(),
        &fees,
    )
    .expect("outputs")
}

#[sqlx::test(migrations = false)]
async fn sagas_the_mint_never_signed_are_abandoned(_opts: PgPoolOptions, conn: PgConnectOptions) {
    let w = world(conn).await;
    let id = w.funded_session(1_000).await;

    // 1. A mint of the quote that funded the wallet, cut after "MintRequested": the quote was
    //    issued by the other attempt, so the replay is refused and the restore answers nothing.
    let (raw, conns) = w.raw(&id).await;
    let quote = raw
        .localstore
        .get_mint_quotes()
        .await
        .expect("quotes")
        .into_iter()
        .next()
        .expect("the funding quote");
    let outputs = fresh_outputs(&raw, 1_000).await;
    let issue = WalletSaga::new(
        Uuid::new_v4(),
        WalletSagaState::Issue(IssueSagaState::MintRequested),
        Amount::from(1_000),
        raw.mint_url.clone(),
        raw.unit.clone(),
        OperationData::Mint(MintOperationData::new_single(
            quote.id.clone(),
            Amount::from(1_000),
            Some(900_000),
            Some(900_000 + outputs.len() as u32 - 1),
            Some(outputs.blinded_messages()),
        )),
    );
    raw.localstore.add_saga(issue).await.expect("saga");
    crash(raw, conns).await;

    let r = w.wallets.reconcile(&id).await.expect("reconcile");
    w.wallets.close(&id).await.expect("close");
    assert_eq!(r.unsettled, 0, "the unsigned mint is settled, not retried");
    assert_eq!(r.compensated, 1, "and counted as rolled back");
    assert_eq!(r.after, unspent(1_000), "the wallet keeps what it had");

    // 2. A swap cut after "SwapRequested" whose inputs the mint spent in another request (a
    //    roll-back that made spent proofs spendable again, then a swap of them, cut).
    let (raw, conns) = w.raw(&id).await;
    let mut proofs = raw.get_unspent_proofs().await.expect("proofs");
    proofs.sort_by_key(|p| p.amount);
    let inputs: Vec<_> = proofs.into_iter().take(2).collect();
    let spent: u64 = inputs.iter().map(|p| u64::from(p.amount)).sum();
    let elsewhere = fresh_outputs(&raw, spent).await;
    raw.mint_connector()
        .post_swap(SwapRequest::new(
            inputs.clone(),
            elsewhere.blinded_messages(),
        ))
        .await
        .expect("the inputs spent in another request");
    let never = fresh_outputs(&raw, spent).await;
    let swap = WalletSaga::new(
        Uuid::new_v4(),
        WalletSagaState::Swap(SwapSagaState::SwapRequested),
        Amount::from(spent),
        raw.mint_url.clone(),
        raw.unit.clone(),
        OperationData::Swap(SwapOperationData {
            input_amount: Amount::from(spent),
            output_amount: Amount::from(spent),
            counter_start: Some(950_000),
            counter_end: Some(950_000 + never.len() as u32 - 1),
            blinded_messages: Some(never.blinded_messages()),
        }),
    );
    let swap_id = swap.id;
    raw.localstore.add_saga(swap).await.expect("saga");
    let ys = inputs.iter().map(|p| p.y().expect("y")).collect::<Vec<_>>();
    raw.localstore
        .reserve_proofs(ys, &swap_id)
        .await
        .expect("reserve");
    crash(raw, conns).await;

    // The open (not only the reconciliation) settles it: the next send has what it needs.
    let before = w.balance(&id).await;
    assert_eq!(before.reserved, 0, "nothing stays reserved after the open");
    assert_eq!(
        before.unspent,
        1_000 - spent,
        "the inputs the mint spent elsewhere are gone, the rest is spendable"
    );
    let r = w.wallets.reconcile(&id).await.expect("reconcile");
    assert_eq!(r.unsettled, 0, "nothing left to retry");
    assert_eq!(r.after, before, "a second look changes nothing");
}
