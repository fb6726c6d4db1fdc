//! Pays the treasury withdrawal an admin asked for (`POST /admin/treasury/withdraw`) out of the
//! treasury wallet: a token P2PK-locked to the key the admin gave, or a Lightning invoice paid
//! by a melt. One withdrawal is in flight at a time (the api's insert is a compare-and-set on
//! a partial unique index), so this job never races another withdrawal for the same sats.
//!
//! Safe to repeat, and to crash at any line; a withdrawal is paid exactly once:
//! - **token**: as a payout ([`super::release_payouts`]). The wallet send's operation id is
//!   stored on the row (a compare-and-set on the id this run read) after the proofs are
//!   reserved and before anything leaves the wallet; a rerun first asks the wallet for that
//!   operation's token (the locked send's own swap is finished the same way wherever it was
//!   cut) and stores it instead of sending again. A run that loses the compare-and-set cancels
//!   its send before anything moved. Marking it SENT is a compare-and-set on REQUESTED.
//! - **invoice**: the melt quote is stored on the row (a compare-and-set on "none yet") before
//!   anything is melted; every run melts by that stored quote only, after asking about it
//!   (cdk finishes a melt its saga left unfinished, then asks the mint): paid means record it,
//!   pending means a fresh run of this job 15 s later, unpaid means melt it. A mint melts a
//!   quote at most once, so no rerun can pay the invoice twice; a quote made by a run that lost
//!   the compare-and-set is never melted.
//!
//! It fails (FAILED, nothing left the treasury) only when the treasury holds too little (or has
//! no wallet file yet), the mint refuses the invoice outright, or the quote expired unpaid.

use std::str::FromStr;
use std::sync::Arc;

use apalis::prelude::{BoxDynError, Data};
use openpleb_common::db::treasury::{self, Withdrawal};
use openpleb_common::domain::keys::XOnlyKey;
use openpleb_common::jobs::{self, WithdrawTreasury};
use openpleb_common::metrics::names;
use openpleb_common::wallet::treasury::TREASURY_WALLET;
use openpleb_common::wallet::{Melted, RecordOperation, WalletError, WalletId};
use uuid::Uuid;

use crate::WorkerContext;

/// Failpoint (token): the send's operation id is stored, nothing sent yet.
pub const CUT_OPERATION_RECORDED: &str = "withdraw:operation_recorded";
/// Failpoint (token): the token is made (the sats left the treasury), not stored yet.
pub const CUT_TOKEN_MADE: &str = "withdraw:token_made";
/// Failpoint (invoice): the melt quote is stored, nothing melted yet.
pub const CUT_QUOTE_RECORDED: &str = "withdraw:quote_recorded";
/// Failpoint (invoice): the invoice is paid, not recorded yet.
pub const CUT_MELTED: &str = "withdraw:melted";

/// How long before a melt the mint reported pending is looked at again.
const PENDING_LOOK_AGAIN: std::time::Duration = std::time::Duration::from_secs(15);

/// Handles one run.
pub async fn handle(
    job: WithdrawTreasury,
    ctx: Data<Arc<WorkerContext>>,
) -> Result<(), BoxDynError> {
    super::with_timeout(run(job.withdrawal_id, &ctx)).await
}

fn cut(point: &str) -> BoxDynError {
    format!("cut at {point}").into()
}

/// Pays withdrawal `id` if it is still in flight (the job's work; tests call it directly).
pub async fn run(id: Uuid, ctx: &WorkerContext) -> Result<(), BoxDynError> {
    let Some(w) = treasury::get_withdrawal(&ctx.pool, id).await? else {
        return Ok(());
    };
    if w.state != "REQUESTED" {
        return Ok(());
    }
    let paid = match w.kind.as_str() {
        "token" => token(ctx, &w).await,
        "invoice" => invoice(ctx, &w).await,
        other => Err(format!("withdrawal {id}: unknown kind {other}").into()),
    };
    // Whatever happened, the admin view shows the balance as it now is.
    if let Err(e) = store_balance(ctx).await {
        tracing::warn!(withdrawal = %id, error = %e, "treasury balance not stored");
    }
    paid
}

/// Reads the treasury wallet's spendable balance into PostgreSQL (the api shows it and the
/// balance gauge reports it; the api opens no wallet).
pub async fn store_balance(ctx: &WorkerContext) -> Result<(), BoxDynError> {
    let wallet = WalletId::parse(TREASURY_WALLET)?;
    if !ctx.wallets()?.exists(&wallet) {
        return Ok(());
    }
    let b = ctx.wallets()?.balance(&wallet).await?;
    treasury::set_balance(&ctx.pool, b.unspent).await?;
    Ok(())
}

/// Ends a withdrawal that paid nothing; counted once, by the run whose mark won.
async fn failed(ctx: &WorkerContext, w: &Withdrawal, why: &str) -> Result<(), BoxDynError> {
    if treasury::mark_failed(&ctx.pool, w.id, why).await? {
        metrics::counter!(names::TREASURY_WITHDRAWALS, "outcome" => "failed").increment(1);
        tracing::warn!(withdrawal = %w.id, kind = %w.kind, reason = why, "treasury withdrawal failed; nothing left the treasury");
    }
    Ok(())
}

/// A token locked to the admin's key.
async fn token(ctx: &WorkerContext, w: &Withdrawal) -> Result<(), BoxDynError> {
    let wallet = WalletId::parse(TREASURY_WALLET)?;
    let sats = u64::try_from(w.amount_sats)?;
    let lock: XOnlyKey = w
        .lock_pubkey
        .as_deref()
        .ok_or("a token withdrawal without a key")?
        .parse()?;
    let mut current = w.clone();
    for _ in 0..3 {
        if let Some(op) = &current.operation_id {
            // An earlier run's send: its token, if it got as far as making one.
            if let Some(token) = ctx.wallets()?.sent_token(&wallet, op).await? {
                let value: u64 = cdk::nuts::Token::from_str(&token)?.value()?.into();
                return sent(ctx, &current, &token, sats.saturating_sub(value)).await;
            }
        }
        let pool = ctx.pool.clone();
        let cuts = ctx.cuts.clone();
        let id = current.id;
        let expected = current.operation_id.clone();
        let record: RecordOperation = Box::new(move |op: String| {
            Box::pin(async move {
                match treasury::set_operation(&pool, id, expected.as_deref(), &op).await {
                    Ok(true) if cuts.hit(CUT_OPERATION_RECORDED) => Err(WalletError::Task(
                        format!("cut at {CUT_OPERATION_RECORDED}"),
                    )),
                    Ok(true) => Ok(()),
                    Ok(false) => Err(WalletError::Superseded),
                    Err(e) => Err(e.into()),
                }
            })
        });
        match ctx
            .wallets()?
            .send_recorded(&wallet, sats, Some(lock), record)
            .await
        {
            Ok(made) => {
                if ctx.cuts.hit(CUT_TOKEN_MADE) {
                    return Err(cut(CUT_TOKEN_MADE));
                }
                return sent(ctx, &current, &made.token, made.fee).await;
            }
            Err(WalletError::Superseded) => {
                match treasury::get_withdrawal(&ctx.pool, w.id).await? {
                    Some(fresh) if fresh.state == "REQUESTED" => current = fresh,
                    _ => return Ok(()),
                }
            }
            // Found before anything was recorded or reserved: nothing moved.
            Err(WalletError::Cdk(cdk::Error::InsufficientFunds)) => {
                return failed(
                    ctx,
                    &current,
                    "the treasury holds too little for this amount",
                )
                .await;
            }
            // No treasury wallet file: no fee was ever swept in, so it holds nothing.
            Err(WalletError::NotFound(_)) => {
                return failed(ctx, &current, "the treasury wallet holds nothing yet").await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(format!("withdrawal {} kept changing under this run", w.id).into())
}

async fn sent(
    ctx: &WorkerContext,
    w: &Withdrawal,
    token: &str,
    fee: u64,
) -> Result<(), BoxDynError> {
    if treasury::mark_sent(&ctx.pool, w.id, token, fee).await? {
        metrics::counter!(names::TREASURY_WITHDRAWALS, "outcome" => "sent").increment(1);
        tracing::info!(withdrawal = %w.id, admin = %w.admin_name, sats = w.amount_sats, fee,
            "treasury withdrawal sent as a locked token");
    }
    Ok(())
}

/// A Lightning invoice, paid by melting the recorded quote.
async fn invoice(ctx: &WorkerContext, w: &Withdrawal) -> Result<(), BoxDynError> {
    let wallet = WalletId::parse(TREASURY_WALLET)?;
    let quote_id = match &w.quote_id {
        Some(q) => q.clone(),
        None => {
            let bolt11 = w
                .invoice
                .as_deref()
                .ok_or("an invoice withdrawal without invoice")?;
            let q = match ctx.wallets()?.melt_quote(&wallet, bolt11).await {
                Ok(q) => q,
                Err(WalletError::Cdk(e))
                    if e.is_definitive_failure() || matches!(e, cdk::Error::RequestAlreadyPaid) =>
                {
                    return failed(ctx, w, &format!("the mint refused the invoice: {e}")).await;
                }
                Err(WalletError::NotFound(_)) => {
                    return failed(ctx, w, "the treasury wallet holds nothing yet").await;
                }
                Err(e) => return Err(e.into()),
            };
            if q.amount != u64::try_from(w.amount_sats)? {
                return failed(ctx, w, "the mint quoted another amount than the invoice's").await;
            }
            if treasury::set_quote(&ctx.pool, w.id, &q.quote_id, q.fee_reserve).await? {
                if ctx.cuts.hit(CUT_QUOTE_RECORDED) {
                    return Err(cut(CUT_QUOTE_RECORDED));
                }
                q.quote_id
            } else {
                // Another run recorded its quote first: follow that one (this quote is never
                // melted).
                match treasury::get_withdrawal(&ctx.pool, w.id).await? {
                    Some(fresh) if fresh.state == "REQUESTED" => {
                        fresh.quote_id.ok_or("a recorded quote went missing")?
                    }
                    _ => return Ok(()),
                }
            }
        }
    };
    match ctx.wallets()?.melt(&wallet, &quote_id).await? {
        Melted::Paid { fee, preimage } => {
            if ctx.cuts.hit(CUT_MELTED) {
                return Err(cut(CUT_MELTED));
            }
            if treasury::mark_paid(&ctx.pool, w.id, fee, preimage.as_deref()).await? {
                metrics::counter!(names::TREASURY_WITHDRAWALS, "outcome" => "paid").increment(1);
                tracing::info!(withdrawal = %w.id, admin = %w.admin_name, sats = w.amount_sats,
                    fee, "treasury withdrawal paid by Lightning");
            }
            Ok(())
        }
        // A Lightning payment can take minutes: look again later rather than spending the
        // job's attempts (the queue retries at once) on a payment under way.
        Melted::Pending => {
            let mut conn = ctx.pool.acquire().await?;
            let next = WithdrawTreasury {
                withdrawal_id: w.id,
            };
            jobs::enqueue_in(&mut conn, &next, PENDING_LOOK_AGAIN).await?;
            tracing::info!(withdrawal = %w.id, "the mint is still paying the invoice; looking again later");
            Ok(())
        }
        Melted::NotPaid(why) => failed(ctx, w, &why).await,
    }
}
