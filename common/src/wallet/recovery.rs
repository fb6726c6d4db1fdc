//! Recovery of one open wallet after crashes and cut operations, on a cdk [`Wallet`] alone.
//!
//! cdk's saga recovery finishes or rolls back interrupted operations; what it leaves behind
//! (proofs reserved, pending or sent by an operation that no longer exists) is settled here by
//! asking the mint (NUT-07). Before recovery runs, the tokens of unfinished sends are copied
//! aside, because recovery deletes the only copy of a token it believes claimed.
//!
//! Opening a wallet runs [`recover_on_open`]; the manager's reconciliation
//! ([`super::reconcile`]) runs the same steps and reports what they found. Nothing here knows
//! about slots or leases, so the open path can use it without depending on the manager.

use std::collections::HashMap;

use cdk::nuts::{RestoreRequest, State};
use cdk::wallet::types::OperationData;
use cdk::wallet::{RecoveryReport, Wallet};

use super::error::WalletError;
use super::kv::{KV_NAMESPACE, KV_SENT};
use super::layout::WalletId;
use super::locked;

/// cdk's recovery on open, with what it misses: the tokens of unfinished sends are stashed
/// first (recovery may delete them), and after a rolled-back operation the wallet's unspent
/// proofs are checked with the mint. A send cut after its swap is rolled back by making its
/// inputs spendable again although the mint spent them; left there, they would fail every
/// later send of the wallet.
pub(super) async fn recover_on_open(w: &Wallet, id: &WalletId) -> Result<(), WalletError> {
    let report = recover_sagas(w).await?;
    // Both ask the mint; if it cannot answer now the wallet still opens (a payout whose locked
    // send is unsettled is refused by `sent_token` meanwhile), and the next open tries again.
    if let Err(e) = locked::settle_intents(w).await {
        tracing::warn!(wallet = %id, error = %e, "cut locked sends not settled yet");
    }
    if report.compensated > 0 {
        if let Err(e) = drop_spent_unspent(w).await {
            tracing::warn!(wallet = %id, error = %e, "spent proofs not checked after a roll-back");
        }
        // An abandoned saga's proofs are owned by nothing now.
        if let Err(e) = settle_orphan_proofs(w).await {
            tracing::warn!(wallet = %id, error = %e, "orphaned proofs not settled yet");
        }
    }
    if report.recovered + report.compensated + report.failed > 0 {
        tracing::info!(wallet = %id, recovered = report.recovered, compensated = report.compensated,
            failed = report.failed, "recovered interrupted wallet operations");
    }
    Ok(())
}

/// cdk's saga recovery, with the tokens of unfinished sends stashed first (recovery may delete
/// them) and the sagas it fails on every time abandoned when the mint never signed any of their
/// outputs (counted as compensated).
pub(super) async fn recover_sagas(w: &Wallet) -> Result<RecoveryReport, WalletError> {
    stash_sent_tokens(w).await?;
    let mut report = w.recover_incomplete_sagas().await?;
    if report.failed > 0 {
        let abandoned = abandon_unsigned_sagas(w).await?;
        report.failed = report.failed.saturating_sub(abandoned);
        report.compensated += abandoned;
    }
    Ok(report)
}

/// Deletes the issue, swap and receive sagas whose outputs the mint has no signature for, and
/// gives an issue saga's quote back; how many.
///
/// cdk 0.18.3 restores such a saga's outputs in its "complete" mode, whose coverage check
/// rejects the mint's empty answer before the branch that would roll the saga back can see it
/// (`wallet/recovery.rs`): the saga fails on every open, its quote or input proofs stay
/// reserved and every later send of the wallet comes up short. An empty answer to the restore
/// of every output is definitive: the mint never executed the request (the wallet is ours alone
/// under its lease, so nothing is in flight), or executed another request for the same inputs or
/// quote, whose outputs are not this saga's. Deleting the saga leaves its proofs owned by
/// nothing, and [`settle_orphan_proofs`] settles them with the mint: inputs unspent there become
/// spendable again, inputs spent there are dropped, an incoming token the mint never took stays
/// its sender's. A partial answer, or none, leaves the saga for the next open.
async fn abandon_unsigned_sagas(w: &Wallet) -> Result<usize, WalletError> {
    let mut abandoned = 0;
    for saga in w.localstore.get_incomplete_sagas().await? {
        if saga.mint_url != w.mint_url || saga.unit != w.unit {
            continue;
        }
        let outputs = match &saga.data {
            OperationData::Mint(d) => d.blinded_messages.clone(),
            OperationData::Swap(d) => d.blinded_messages.clone(),
            OperationData::Receive(d) => d.blinded_messages.clone(),
            OperationData::Send(_) | OperationData::Melt(_) => None,
        };
        let Some(outputs) = outputs.filter(|o| !o.is_empty()) else {
            continue;
        };
        let answer = match w
            .mint_connector()
            .post_restore(RestoreRequest { outputs })
            .await
        {
            Ok(answer) => answer,
            // The mint cannot answer now; the next open asks again.
            Err(_) => continue,
        };
        if !answer.signatures.is_empty() || !answer.outputs.is_empty() {
            continue;
        }
        if matches!(saga.data, OperationData::Mint(_)) {
            w.localstore.release_mint_quote(&saga.id).await?;
        }
        w.localstore.delete_saga(&saga.id).await?;
        tracing::warn!(saga = %saga.id, kind = ?saga.kind,
            "abandoned an interrupted wallet operation the mint never signed");
        abandoned += 1;
    }
    Ok(abandoned)
}

/// Asks the mint about every proof the wallet holds as unspent and drops the spent ones;
/// whether there were any.
pub(super) async fn drop_spent_unspent(w: &Wallet) -> Result<bool, WalletError> {
    let unspent = w.get_unspent_proofs().await?;
    if unspent.is_empty() {
        return Ok(false);
    }
    let mut any = false;
    for chunk in unspent.chunks(CHECK_STATE_CHUNK) {
        // Removes the spent ones from the store itself.
        let states = w.check_proofs_spent(chunk.to_vec()).await?;
        any |= states.iter().any(|s| s.state == State::Spent);
    }
    Ok(any)
}

/// Copies the tokens of unfinished send sagas into the wallet's KV store: cdk's recovery deletes
/// a confirmed send saga (and with it the only copy of its token) once it believes the token was
/// claimed, but a payout whose token never reached PostgreSQL still needs it.
pub(super) async fn stash_sent_tokens(w: &Wallet) -> Result<(), WalletError> {
    for saga in w.localstore.get_incomplete_sagas().await? {
        if let OperationData::Send(d) = &saga.data {
            if let Some(token) = &d.token {
                w.localstore
                    .kv_write(
                        KV_NAMESPACE,
                        KV_SENT,
                        &saga.id.to_string(),
                        token.as_bytes(),
                    )
                    .await?;
            }
        }
    }
    Ok(())
}

/// Proofs asked about per NUT-07 request.
const CHECK_STATE_CHUNK: usize = 200;

/// What [`settle_orphan_proofs`] did, in sats.
#[derive(Debug, Default)]
pub(super) struct Orphans {
    pub(super) spent: u64,
    pub(super) returned: u64,
    pub(super) abandoned: u64,
    pub(super) left: u64,
}

/// Settles reserved, pending and sent proofs that no live operation owns (their saga is gone or
/// never existed) against the mint:
/// - spent: dropped (a claimed token, a finished swap);
/// - reserved and unspent: spendable again (only unspent proofs of this wallet get reserved);
/// - pending and unspent: dropped, as cdk's own compensation of a receive does. Outside a melt
///   only a receive marks proofs pending, and with no saga it never asked the mint, so the
///   token is still its sender's. A wallet with melt quotes is left alone (a melt marks this
///   wallet's own proofs pending);
/// - sent and unspent: left; the recipient may still claim the token.
pub(super) async fn settle_orphan_proofs(w: &Wallet) -> Result<Orphans, WalletError> {
    let held = w
        .localstore
        .get_proofs(
            Some(w.mint_url.clone()),
            Some(w.unit.clone()),
            Some(vec![State::Reserved, State::Pending, State::PendingSpent]),
            None,
        )
        .await?;
    let mut live_ops: HashMap<uuid::Uuid, bool> = HashMap::new();
    let mut orphans = Vec::new();
    for p in held {
        let owned = match p.used_by_operation {
            None => false,
            Some(op) => match live_ops.get(&op) {
                Some(live) => *live,
                None => {
                    let live = w.localstore.get_saga(&op).await?.is_some()
                        || locked::is_unfinished(w, &op).await?;
                    live_ops.insert(op, live);
                    live
                }
            },
        };
        if !owned {
            orphans.push(p);
        }
    }
    let mut done = Orphans::default();
    if orphans.is_empty() {
        return Ok(done);
    }
    let melts = !w.localstore.get_melt_quotes().await?.is_empty();
    for chunk in orphans.chunks(CHECK_STATE_CHUNK) {
        let proofs = chunk.iter().map(|p| p.proof.clone()).collect();
        // Removes the spent ones from the store itself.
        let states: HashMap<_, _> = w
            .check_proofs_spent(proofs)
            .await?
            .into_iter()
            .map(|s| (s.y, s.state))
            .collect();
        let (mut back, mut gone) = (Vec::new(), Vec::new());
        for p in chunk {
            let sats = u64::from(p.proof.amount);
            match (states.get(&p.y), p.state) {
                (Some(State::Spent), _) => done.spent += sats,
                // Outputs locked to someone else (a cdk send cut after its swap): not this
                // wallet's to spend, so they are left for a person (and reported).
                (Some(State::Unspent), State::Reserved) if p.spending_condition.is_some() => {
                    done.left += sats;
                }
                (Some(State::Unspent), State::Reserved) => {
                    done.returned += sats;
                    let mut p = p.clone();
                    p.state = State::Unspent;
                    p.used_by_operation = None;
                    back.push(p);
                }
                (Some(State::Unspent), State::Pending) if !melts => {
                    done.abandoned += sats;
                    gone.push(p.y);
                }
                (_, State::PendingSpent) => {}
                _ => done.left += sats,
            }
        }
        w.localstore.update_proofs(back, gone).await?;
    }
    Ok(done)
}
