//! Releases an offer's recorded payouts: a token per payout, P2PK-locked to the recipient's
//! payout key, and the platform's share swept into the treasury wallet. Mint fees come out of
//! each payout (the token is worth its amount minus the fee, and the ledger records both); the
//! treasury's fee for receiving the platform's share is the platform's cost, outside any offer.
//!
//! Safe to repeat, and to crash at any line: every payout row exists before any ecash moves;
//! the wallet send's operation id is stored on the row before the send is confirmed, and a
//! retry first asks the wallet for the token of that operation (kept even after cdk's recovery)
//! and stores it instead of paying again. Two runs at once (a retry beside a fresh enqueue)
//! cannot both pay: storing the operation id is a compare-and-set on the id the run read, and
//! the loser cancels its send before anything leaves the wallet. Marking a payout RELEASED is a
//! compare-and-set that also writes its ledger entries. A send that never got past reserving its proofs is undone by
//! the wallet's recovery and simply made again. The treasury sweep treats "already spent" as
//! done: only this platform ever held the unlocked platform token.

use std::str::FromStr;
use std::sync::Arc;

use apalis::prelude::{BoxDynError, Data};
use openpleb_common::db::payouts::{self, Payout};
use openpleb_common::domain::keys::XOnlyKey;
use openpleb_common::jobs::ReleasePayouts;
use openpleb_common::wallet::{RecordOperation, WalletError, WalletId};

use crate::WorkerContext;

/// The wallet that collects platform fees.
pub const TREASURY_WALLET: &str = "platform_treasury";

/// Handles one release run.
pub async fn handle(job: ReleasePayouts, ctx: Data<Arc<WorkerContext>>) -> Result<(), BoxDynError> {
    super::with_timeout(run(job, &ctx)).await
}

async fn release(ctx: &WorkerContext, p: &Payout) -> Result<(), BoxDynError> {
    let wallet = WalletId::parse(&p.source_wallet)?;
    if let Some(op) = &p.send_operation_id {
        if let Some(token) = ctx.wallets.sent_token(&wallet, op).await? {
            // The fee came out of the payout; what the token is worth tells how much.
            let value: u64 = cdk::nuts::Token::from_str(&token)?.value()?.into();
            let fee = u64::try_from(p.amount_sats)?.saturating_sub(value);
            payouts::mark_released(&ctx.pool, p, &token, fee).await?;
            return Ok(());
        }
    }
    let lock = p
        .lock_pubkey
        .as_deref()
        .map(str::parse::<XOnlyKey>)
        .transpose()?;
    let sats = u64::try_from(p.amount_sats)?;
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
    let sent = match ctx.wallets.send_recorded(&wallet, sats, lock, record).await {
        Ok(sent) => sent,
        // Another run of this job recorded its own send first; it stores that token.
        Err(WalletError::Superseded) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    // Test hook for the crash test: die at the worst moment, the token made but not stored.
    if std::env::var_os("OPENPLEB_TEST_ABORT_AFTER_SEND").is_some() {
        std::process::abort();
    }
    payouts::mark_released(&ctx.pool, p, &sent.token, sent.fee).await?;
    tracing::info!(payout = %p.id, offer = %p.offer_id, party = %p.party, sats, "payout released");
    Ok(())
}

async fn run(job: ReleasePayouts, ctx: &WorkerContext) -> Result<(), BoxDynError> {
    for p in payouts::pending(&ctx.pool, job.offer_id).await? {
        release(ctx, &p).await?;
    }
    let treasury = WalletId::parse(TREASURY_WALLET)?;
    for p in payouts::unswept(&ctx.pool, job.offer_id).await? {
        let Some(token) = &p.token else { continue };
        match ctx.wallets.receive(&treasury, token, vec![]).await {
            Ok(_) | Err(WalletError::Cdk(cdk::Error::TokenAlreadySpent)) => {
                payouts::mark_swept(&ctx.pool, p.id).await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
