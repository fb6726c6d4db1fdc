//! Reconciliation: live wallets are checked against the mint in turn, and payouts whose release
//! should long have happened are released again.
//!
//! Per wallet ([`openpleb_common::wallet::WalletManager::reconcile`]): interrupted cdk
//! operations (sagas) are finished or rolled back, and reserved, pending or sent proofs no
//! operation owns are settled by asking the mint (NUT-07): spent ones dropped, reserved ones
//! made spendable, pending ones (a receive cut before it reached the mint) dropped, unclaimed
//! sent ones left for their recipient. A wallet another worker has open is skipped (that
//! worker recovers it on its next open) and comes first next run.
//!
//! Funding intents their receive job left open (a cut, a job that gave up) are settled first
//! ([`openpleb_common::trade::fund_receive::settle_open`]), by what their session wallet
//! recorded of the token: the offer funded or the sats refunded; a token not received yet is
//! received now (the same work as the job's).
//!
//! The treasury's upkeep comes next: the one-time move of the legacy treasury wallet
//! ([`super::sweep_legacy_treasury`]), a fresh job for a withdrawal in flight whose job is gone,
//! and the treasury balance the admin view reads.
//!
//! Payouts still unreleased past a grace period ([`alerts::OVERDUE_PAYOUT_GRACE`]) get an error
//! line, and a fresh release job if none is queued (theirs gave up or went missing): money owed
//! and not moving needs a person to look.
//!
//! Safe to repeat: reconciling a settled wallet changes nothing (recovery of a finished saga is
//! a no-op; a proof is settled only when no operation owns it, by what the mint says of it, and
//! a settled proof is no longer an orphan; an intent moves from OPEN once, under its row lock,
//! in the transaction that records its money), and the release job it enqueues is itself safe to
//! repeat and to run beside another run of itself.

use std::sync::Arc;
use std::time::Duration;

use apalis::prelude::{BoxDynError, Data};
use openpleb_common::db::{alerts, fund_intents, treasury, wallet_checks};
use openpleb_common::jobs::{self, queries, ReconcileWallets, ReleasePayouts, WithdrawTreasury};
use openpleb_common::trade::fund_receive::{self, Ran};
use openpleb_common::wallet::{Reconciled, WalletError, WalletId};

use crate::WorkerContext;
use openpleb_common::wallet::treasury::{LEGACY_TREASURY_WALLET, TREASURY_WALLET};

/// A funding intent younger than this may still belong to a running request; the
/// reconciliation leaves it to that request (whose row lock it would skip anyway).
pub const FUND_INTENT_GRACE: Duration = Duration::from_secs(120);

/// Stop taking new wallets after this long, well inside the job timeout; the rest come first
/// next run.
const RUN_BUDGET: Duration = Duration::from_secs(40);

/// Handles one reconciliation run.
pub async fn handle(
    job: ReconcileWallets,
    ctx: Data<Arc<WorkerContext>>,
) -> Result<(), BoxDynError> {
    let _ = job;
    super::with_timeout(run(&ctx)).await.map(|_| ())
}

/// What one run did.
#[derive(Debug, Default)]
pub struct Summary {
    /// Wallets reconciled, with what was found.
    pub reconciled: Vec<(WalletId, Reconciled)>,
    /// Wallets skipped because another process had them open, or that failed.
    pub skipped: usize,
    /// Offers whose overdue release was enqueued again.
    pub releases_requeued: usize,
    /// Funding intents a cut had left open, now settled.
    pub fund_intents_settled: usize,
}

/// Settles funding intents left OPEN for longer than `older_than`; returns how many it settled.
/// Safe to repeat (see [`openpleb_common::trade::fund_receive::settle_open`]).
pub async fn settle_fund_intents(
    ctx: &WorkerContext,
    older_than: Duration,
) -> Result<usize, BoxDynError> {
    let mut settled = 0;
    for id in fund_intents::open_before(&ctx.pool, older_than, 100).await? {
        match fund_receive::settle_open(ctx, id).await {
            Ok(Ran::Ended(end)) => {
                tracing::warn!(intent = %id, end = ?end, "funding intent left open by a cut settled");
                settled += 1;
            }
            Ok(Ran::Left) => {}
            Err(e) => {
                tracing::warn!(intent = %id, error = %e, "settling funding intent failed; retried next run")
            }
        }
    }
    Ok(settled)
}

/// One run: overdue releases, then up to the configured batch of due wallets.
pub async fn run(ctx: &WorkerContext) -> Result<Summary, BoxDynError> {
    let mut summary = Summary {
        fund_intents_settled: settle_fund_intents(ctx, FUND_INTENT_GRACE).await?,
        ..Summary::default()
    };
    let mut offers: Vec<uuid::Uuid> = alerts::overdue_payouts(&ctx.pool, 100)
        .await?
        .into_iter()
        .map(|p| p.offer_id)
        .collect();
    offers.sort_unstable();
    offers.dedup();
    for offer in offers {
        tracing::error!(offer = %offer, "payouts overdue for release");
        if queries::release_queued(&ctx.pool, offer).await? {
            continue;
        }
        let mut conn = ctx.pool.acquire().await?;
        jobs::enqueue(&mut conn, &ReleasePayouts { offer_id: offer }).await?;
        summary.releases_requeued += 1;
    }

    treasury_upkeep(ctx).await?;

    let started = tokio::time::Instant::now();
    let platform = [
        WalletId::parse(TREASURY_WALLET)?,
        WalletId::parse(LEGACY_TREASURY_WALLET)?,
    ];
    let due = wallet_checks::due(
        &ctx.pool,
        &platform,
        // Half the interval: a wallet checked late in one run is due again in the next.
        ctx.config.worker.reconcile_interval / 2,
        ctx.config.worker.reconcile_batch,
    )
    .await?;
    for wallet in due {
        if started.elapsed() > RUN_BUDGET {
            break;
        }
        if !ctx.wallets()?.exists(&wallet) {
            wallet_checks::mark_checked(&ctx.pool, &wallet).await?;
            continue;
        }
        match ctx.wallets()?.reconcile(&wallet).await {
            Ok(found) => {
                report(&wallet, &found);
                wallet_checks::mark_checked(&ctx.pool, &wallet).await?;
                summary.reconciled.push((wallet, found));
            }
            // Deleted since, or open elsewhere: nothing to do now.
            Err(WalletError::NotFound(_) | WalletError::Busy(_)) => summary.skipped += 1,
            Err(e) => {
                tracing::warn!(wallet = %wallet, error = %e, "reconciling wallet failed; retried next run");
                summary.skipped += 1;
            }
        }
    }
    Ok(summary)
}

/// The treasury's share of the run: the one-time move of the legacy wallet (until DONE), a
/// job for a withdrawal in flight whose job gave up or went missing, and the balance the admin
/// view shows. A failure here is logged and tried again next run; the wallets still get checked.
async fn treasury_upkeep(ctx: &WorkerContext) -> Result<(), BoxDynError> {
    if let Err(e) = super::sweep_legacy_treasury::run(ctx).await {
        tracing::warn!(error = %e, "legacy treasury move not done yet; tried again next run");
    }
    if let Some(w) = treasury::in_flight(&ctx.pool).await? {
        if !queries::withdrawal_queued(&ctx.pool).await? {
            tracing::error!(withdrawal = %w.id, "treasury withdrawal in flight without a job; enqueued again");
            let mut conn = ctx.pool.acquire().await?;
            jobs::enqueue(
                &mut conn,
                &WithdrawTreasury {
                    withdrawal_id: w.id,
                },
            )
            .await?;
        }
    }
    if let Err(e) = super::withdraw_treasury::store_balance(ctx).await {
        tracing::warn!(error = %e, "treasury balance not stored; tried again next run");
    }
    Ok(())
}

fn report(wallet: &WalletId, r: &Reconciled) {
    if r.unsettled > 0 || r.orphans_left > 0 {
        tracing::warn!(wallet = %wallet, unsettled = r.unsettled, orphans_left_sats = r.orphans_left,
            "wallet has operations or proofs the reconciliation could not settle");
    }
    if r.noteworthy() {
        tracing::info!(wallet = %wallet, recovered = r.recovered, compensated = r.compensated,
            orphans_spent_sats = r.orphans_spent, orphans_returned_sats = r.orphans_returned,
            orphans_abandoned_sats = r.orphans_abandoned,
            unspent_before = r.before.unspent, unspent_after = r.after.unspent,
            pending_before = r.before.pending, pending_after = r.after.pending,
            reserved_before = r.before.reserved, reserved_after = r.after.reserved,
            sent_before = r.before.sent, sent_after = r.after.sent,
            "reconciled wallet with the mint");
    }
}
