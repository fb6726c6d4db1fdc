//! Releases an offer's recorded payouts: a token per payout, P2PK-locked to the recipient's
//! payout key, and the platform's share (locked to the treasury key) swept into the treasury
//! wallet with the key's secret. Mint fees come out of
//! each payout (the token is worth its amount minus the fee, and the ledger records both); the
//! treasury's fee for receiving the platform's share is the platform's cost, outside any offer.
//!
//! Safe to repeat, and to crash at any line: every payout row exists before any ecash moves;
//! the wallet send's operation id is stored on the row before the send is confirmed, and a
//! retry first asks the wallet for the token of that operation (kept even after cdk's recovery)
//! and stores it instead of paying again. Two runs at once (a retry beside a fresh enqueue)
//! cannot both pay: storing the operation id is a compare-and-set on the id the run read; the
//! loser cancels its send before anything leaves the wallet and follows the winner's send. Marking a payout RELEASED is a
//! compare-and-set that also writes its ledger entries. A send that never got past reserving its proofs is undone by
//! the wallet's recovery and simply made again. A sweep that finds the platform token already
//! spent asks the treasury wallet whether it received it (an earlier run cut before marking
//! it): then it is swept; else someone else spent it, which is marked SPENT_ELSEWHERE, counted
//! and alerted, never booked as swept. Both marks are compare-and-sets on RELEASED.

use std::str::FromStr;
use std::sync::Arc;

use apalis::prelude::{BoxDynError, Data};
use openpleb_common::db::payouts::{self, Payout};
use openpleb_common::domain::keys::XOnlyKey;
use openpleb_common::domain::payout::PayoutState;
use openpleb_common::jobs::ReleasePayouts;
use openpleb_common::metrics::names;
use openpleb_common::trade::payouts::released;
use openpleb_common::wallet::treasury::TreasuryKey;
use openpleb_common::wallet::{RecordOperation, WalletError, WalletId};

use crate::WorkerContext;

/// The wallet that collects platform fees (seeded from `TREASURY_SECRET`).
pub use openpleb_common::wallet::treasury::TREASURY_WALLET;

/// Handles one release run.
pub async fn handle(job: ReleasePayouts, ctx: Data<Arc<WorkerContext>>) -> Result<(), BoxDynError> {
    super::with_timeout(run(job, &ctx)).await
}

/// How one attempt at a payout ended.
enum Attempt {
    /// Released (now, or by an earlier run whose token was found).
    Released,
    /// Another run recorded its own send first; read the row again and follow it.
    Superseded,
}

/// Releases one payout, following another run's send if that run got there first.
async fn release(ctx: &WorkerContext, p: &Payout) -> Result<(), BoxDynError> {
    let mut current = p.clone();
    for _ in 0..3 {
        if current.state != PayoutState::Recorded {
            return Ok(());
        }
        match attempt(ctx, &current).await? {
            Attempt::Released => return Ok(()),
            Attempt::Superseded => match payouts::get(&ctx.pool, p.id).await? {
                Some(fresh) => current = fresh,
                None => return Ok(()),
            },
        }
    }
    Err(format!("payout {} kept changing under this run", p.id).into())
}

async fn attempt(ctx: &WorkerContext, p: &Payout) -> Result<Attempt, BoxDynError> {
    let wallet = WalletId::parse(&p.source_wallet)?;
    let sats = u64::try_from(p.amount_sats)?;
    if let Some(op) = &p.send_operation_id {
        // Waits for the wallet's lock, so a send still under way elsewhere in this process
        // finishes first.
        if let Some(token) = ctx.wallets()?.sent_token(&wallet, op).await? {
            // The fee came out of the payout; what the token is worth tells how much.
            let value: u64 = cdk::nuts::Token::from_str(&token)?.value()?.into();
            released(ctx, p, &token, sats.saturating_sub(value)).await?;
            return Ok(Attempt::Released);
        }
    }
    let lock = p
        .lock_pubkey
        .as_deref()
        .map(str::parse::<XOnlyKey>)
        .transpose()?;
    let pool = ctx.pool.clone();
    let id = p.id;
    let expected = p.send_operation_id.clone();
    let record: RecordOperation = Box::new(move |op: String| {
        Box::pin(async move {
            match payouts::set_operation(&pool, id, expected.as_deref(), &op).await {
                Ok(true) => Ok(()),
                Ok(false) => Err(WalletError::Superseded),
                Err(e) => Err(e.into()),
            }
        })
    });
    let sent = match ctx
        .wallets()?
        .send_recorded(&wallet, sats, lock, record)
        .await
    {
        Ok(sent) => sent,
        Err(WalletError::Superseded) => return Ok(Attempt::Superseded),
        Err(e) => return Err(e.into()),
    };
    // Test hook for the crash test: die at the worst moment, the token made but not stored.
    if std::env::var_os("OPENPLEB_TEST_ABORT_AFTER_SEND").is_some() {
        std::process::abort();
    }
    if sent.fee > sats {
        return Err(format!("payout {}: the send's fee exceeds the payout", p.id).into());
    }
    released(ctx, p, &sent.token, sent.fee).await?;
    tracing::info!(payout = %p.id, offer = %p.offer_id, party = %p.party, sats, "payout released");
    Ok(Attempt::Released)
}

/// Releases the offer's recorded payouts (the job's work; the wallet cleanup calls it too, for
/// a sweep it just recorded).
pub async fn run(job: ReleasePayouts, ctx: &WorkerContext) -> Result<(), BoxDynError> {
    // One payout that cannot go out now must not hold up the others: try each, then fail the
    // run (so it is retried) if any could not.
    let mut failed = None;
    for p in payouts::pending(&ctx.pool, job.offer_id).await? {
        if let Err(e) = release(ctx, &p).await {
            tracing::warn!(payout = %p.id, offer = %p.offer_id, error = %e, "payout not released; retried");
            failed.get_or_insert(e);
        }
    }
    sweep(ctx, job.offer_id).await?;
    failed.map_or(Ok(()), Err)
}

/// Sweeps the offer's released platform payouts into the treasury wallet with the treasury
/// key's secret (or, for a fee token locked before the upgrade to the key derived from the
/// master secret, with that one), then stores the treasury's balance for the admin view. A
/// process without `TREASURY_SECRET` (a worker refuses to start so; tests build one) leaves
/// them locked and released, for whoever holds the key.
pub async fn sweep(ctx: &WorkerContext, offer_id: uuid::Uuid) -> Result<(), BoxDynError> {
    let treasury = WalletId::parse(TREASURY_WALLET)?;
    let key = TreasuryKey::from_config(&ctx.config)?;
    let legacy = ctx.wallets()?.legacy_treasury_key()?;
    let mut swept = false;
    for p in payouts::unswept(&ctx.pool, offer_id).await? {
        let Some(token) = &p.token else { continue };
        let keys = key.signing_keys(p.lock_pubkey.as_deref(), &legacy);
        if keys.is_empty() {
            tracing::warn!(payout = %p.id, offer = %p.offer_id,
                "no TREASURY_SECRET here: the platform fee stays locked to TREASURY_PUBKEY");
            continue;
        }
        match ctx.wallets()?.receive(&treasury, token, keys).await {
            Ok(_) => {
                payouts::mark_swept(&ctx.pool, p.id).await?;
                swept = true;
            }
            Err(WalletError::Cdk(cdk::Error::TokenAlreadySpent)) => {
                if ctx.wallets()?.received(&treasury, token).await? {
                    payouts::mark_swept(&ctx.pool, p.id).await?;
                    swept = true;
                } else if payouts::mark_spent_elsewhere(&ctx.pool, p.id).await? {
                    metrics::counter!(names::PLATFORM_TOKENS_SPENT_ELSEWHERE).increment(1);
                    tracing::error!(payout = %p.id, offer = %p.offer_id, sats = p.amount_sats,
                        "a platform token was spent by someone other than the treasury");
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    if swept {
        super::withdraw_treasury::store_balance(ctx).await?;
    }
    Ok(())
}
