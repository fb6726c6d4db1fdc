//! Watches a mint quote until it is paid, then mints the sats into the quote's wallet.
//!
//! Safe to repeat: the wallet asks the mint before minting, and a quote that was minted before
//! (by an earlier run that crashed before recording it) reports what it issued instead of
//! minting again; the ISSUED update is a compare-and-set, and the offer's move (deposit →
//! INVOICE_PAID, bond → TAKER_BOND_PAID, or a refund of a late payment) happens in the same
//! transaction, so it happens once. An unpaid quote schedules the next look with an idempotency
//! key per round, so duplicate runs do not multiply the watchers.
//!
//! A quote made without opening its wallet (locked to a key derived from the wallet's seed and
//! the quote's nonce) is minted into its wallet, created if it does not exist yet.
//!
//! A wallet's own quote whose wallet is gone (which the wallet cleanup avoids while it can be paid)
//! cannot be minted by anyone: the watcher marks it ORPHANED, logs an error and stops, rather
//! than open an empty wallet that does not know the quote and fail on every retry. The admin
//! alerts list orphaned quotes.

use std::sync::Arc;

use apalis::prelude::{BoxDynError, Data};
use chrono::Utc;
use openpleb_common::db::quotes;
use openpleb_common::domain::payout::QuoteState;
use openpleb_common::jobs::{enqueue_in, WatchMintQuote};
use openpleb_common::trade::paid::quote_minted;
use openpleb_common::trade::quote::lock_of;
use openpleb_common::wallet::{MintOutcome, WalletId};

use crate::WorkerContext;

/// Handles one look at a quote.
pub async fn handle(job: WatchMintQuote, ctx: Data<Arc<WorkerContext>>) -> Result<(), BoxDynError> {
    super::with_timeout(run(job, &ctx)).await
}

async fn run(job: WatchMintQuote, ctx: &WorkerContext) -> Result<(), BoxDynError> {
    let Some(quote) = quotes::get(&ctx.pool, &job.quote_id).await? else {
        tracing::warn!(quote = %job.quote_id, "watch job for an unknown quote; dropping it");
        return Ok(());
    };
    if quote.state.is_final() {
        return Ok(());
    }
    let wallet = WalletId::parse(&quote.wallet_id)?;
    // A quote locked to a derived key needs no file: the mint creates the wallet if need be.
    let lock = lock_of(&quote);
    if lock.is_none() && !ctx.wallets.exists(&wallet) {
        let orphaned = quotes::transition(
            &ctx.pool,
            &quote.quote_id,
            &[QuoteState::Unpaid, QuoteState::Paid],
            QuoteState::Orphaned,
        )
        .await?;
        if orphaned {
            tracing::error!(quote = %quote.quote_id, wallet = %wallet, offer = ?quote.offer_id,
                sats = quote.amount_sats,
                "the quote's wallet is gone: a payment could not be minted or refunded; \
                 watching stops (listed in the admin alerts)");
        }
        return Ok(());
    }
    match ctx
        .wallets
        .mint_quote_with(&wallet, &quote.quote_id, lock)
        .await?
    {
        MintOutcome::Issued(sats) => {
            let expected = u64::try_from(quote.amount_sats)?;
            if sats != expected {
                tracing::error!(quote = %quote.quote_id, expected, minted = sats,
                    "mint issued a different amount than the quote asked for");
            }
            if let Some(paid) = quote_minted(ctx, &quote, sats).await? {
                tracing::info!(quote = %quote.quote_id, wallet = %wallet, sats, ?paid, "quote minted");
            }
        }
        MintOutcome::Unpaid => {
            let grace = chrono::Duration::from_std(quotes::PAYMENT_GRACE)?;
            let lapsed = Utc::now() > quote.expires_at + grace;
            if lapsed {
                quotes::transition(
                    &ctx.pool,
                    &quote.quote_id,
                    &[QuoteState::Unpaid],
                    QuoteState::Expired,
                )
                .await?;
                return Ok(());
            }
            let mut conn = ctx.pool.acquire().await?;
            enqueue_in(
                &mut conn,
                &job.next(),
                ctx.config.worker.quote_poll_interval,
            )
            .await?;
        }
    }
    Ok(())
}
