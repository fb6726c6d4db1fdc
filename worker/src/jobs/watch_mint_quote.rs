//! Watches a mint quote until it is paid, then mints the sats into the quote's wallet, asking
//! the mint as little as that allows.
//!
//! When it asks:
//! - A quote the mint reported paid (its NUT-17 notification started the look) is asked about
//!   at once; should it still be unpaid, that chain goes on by the rules below.
//! - A quote whose payment would still move something (its offer waits for the deposit, its
//!   claim for the bond) is asked about every `quote_poll_interval` while the mint's
//!   subscription does not cover it. While it does, the mint reports a payment by itself and a
//!   look only insures against a lost notification: the first look is skipped (the
//!   subscription has just brought the quote's state) and the wait doubles after each one, up
//!   to `quote_poll_max_interval`.
//! - A quote whose offer or claim ended (cancelled, expired, claim lost or lapsed) can still be
//!   paid until it expires at the mint, and such a payment must be minted and refunded. It is
//!   not asked about again but once, at its expiry plus [`quotes::PAYMENT_GRACE`]; in between,
//!   the subscription reports a payment, and the last look finds one it missed (or the worker
//!   had no subscription).
//! - The look at the expiry plus the grace is the last: unpaid, the quote is given up
//!   (EXPIRED). A payment found after that (a lapse asking once more) is still refunded.
//!
//! Safe to repeat: the wallet asks the mint before minting, and a quote that was minted before
//! (by an earlier run that crashed before recording it) reports what it issued instead of
//! minting again; the ISSUED update is a compare-and-set, and the offer's move (deposit →
//! INVOICE_PAID, bond → TAKER_BOND_PAID, or a refund of a late payment) happens in the same
//! transaction, so it happens once. A look schedules the next with an idempotency key per
//! round, so duplicate runs do not multiply the watchers; a run cut before it scheduled the
//! next is retried, or its quote is found by the quote sweep.
//!
//! A quote made without opening its wallet (locked to a key derived from the wallet's seed and
//! the quote's nonce) is minted into its wallet, created if it does not exist yet.
//!
//! A quote the mint reports ISSUED counts only when its wallet's own records show the issue
//! (`MintOutcome::IssuedElsewhere` otherwise: someone else minted it, which a mint enforcing
//! NUT-20 never allows): it is given up, warned about and counted, and credits nothing.
//!
//! A wallet's own quote whose wallet is gone (which the wallet cleanup avoids while it can be paid)
//! cannot be minted by anyone: the watcher marks it ORPHANED, logs an error and stops, rather
//! than open an empty wallet that does not know the quote and fail on every retry. The admin
//! alerts list orphaned quotes.

use std::sync::Arc;
use std::time::Duration;

use apalis::prelude::{BoxDynError, Data};
use chrono::{DateTime, Utc};
use openpleb_common::db::quotes::{self, WalletQuote};
use openpleb_common::domain::payout::QuoteState;
use openpleb_common::jobs::{enqueue_in, WatchMintQuote, PAID_CHAIN};
use openpleb_common::metrics::quote_look;
use openpleb_common::trade::paid::{quote_issued_elsewhere, quote_minted};
use openpleb_common::trade::quote::lock_of;
use openpleb_common::wallet::{MintOutcome, WalletId};

use crate::WorkerContext;

/// Handles one look at a quote.
pub async fn handle(job: WatchMintQuote, ctx: Data<Arc<WorkerContext>>) -> Result<(), BoxDynError> {
    super::with_timeout(run(job, &ctx)).await
}

/// What a look does before (or instead of) asking the mint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// Ask the mint now.
    Ask,
    /// Leave it to the subscription for now: look again after this.
    Wait(Duration),
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
    let lock = lock_of(ctx, &quote)?;
    if lock.is_none() && !ctx.wallets()?.exists(&wallet) {
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
    let now = Utc::now();
    let last_look = last_look_at(&quote)?;
    let awaited = quotes::awaited(&ctx.pool, &quote.quote_id).await?;
    let covered = ctx.subscribed.covers(&quote.quote_id);
    let polls = Polls::of(ctx);
    if let Plan::Wait(delay) = plan(&job, now, last_look, awaited, covered, polls) {
        quote_look(if awaited { "subscribed" } else { "ended" });
        let mut conn = ctx.pool.acquire().await?;
        enqueue_in(&mut conn, &job.next(), delay).await?;
        return Ok(());
    }
    quote_look("asked");
    match ctx
        .wallets()?
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
        // Somebody else minted it: nothing arrived, so it is given up like an unpaid quote
        // (once; no more looks) and its offer or claim lapses unpaid at its deadline.
        MintOutcome::IssuedElsewhere => quote_issued_elsewhere(ctx, &quote).await?,
        MintOutcome::Unpaid => {
            if now >= last_look {
                quotes::transition(
                    &ctx.pool,
                    &quote.quote_id,
                    &[QuoteState::Unpaid],
                    QuoteState::Expired,
                )
                .await?;
                return Ok(());
            }
            let delay = if awaited {
                polls.wait(job.round, covered)
            } else {
                Duration::MAX
            };
            let mut conn = ctx.pool.acquire().await?;
            enqueue_in(&mut conn, &job.next(), until(now, last_look, delay)).await?;
        }
    }
    Ok(())
}

/// When the last look at `quote` is due: its expiry at the mint plus the grace in which a
/// payment made at the last moment may still settle.
fn last_look_at(quote: &WalletQuote) -> Result<DateTime<Utc>, BoxDynError> {
    Ok(quote.expires_at + chrono::Duration::from_std(quotes::PAYMENT_GRACE)?)
}

/// Whether this look asks the mint, or waits (and how long) for the subscription to report a
/// payment.
fn plan(
    job: &WatchMintQuote,
    now: DateTime<Utc>,
    last_look: DateTime<Utc>,
    awaited: bool,
    covered: bool,
    polls: Polls,
) -> Plan {
    // The mint said paid (its notification started this chain), or this is the last look:
    // ask. Should the mint have found it unpaid after all, the chain goes on as any other.
    let reported_paid = job.chain.as_deref() == Some(PAID_CHAIN) && job.round == 0;
    if reported_paid || now >= last_look {
        return Plan::Ask;
    }
    // Its offer or claim ended: only the last look asks.
    if !awaited {
        return Plan::Wait(until(now, last_look, Duration::MAX));
    }
    // A chain's first look at a covered quote: the subscription has just brought its state.
    if covered && job.round == 0 {
        return Plan::Wait(until(now, last_look, polls.wait(0, true)));
    }
    Plan::Ask
}

/// The polling settings.
#[derive(Debug, Clone, Copy)]
struct Polls {
    /// `quote_poll_interval`.
    base: Duration,
    /// `quote_poll_max_interval`.
    cap: Duration,
}

impl Polls {
    fn of(ctx: &WorkerContext) -> Self {
        Self {
            base: ctx.config.worker.quote_poll_interval,
            cap: ctx.config.worker.quote_poll_max_interval,
        }
    }

    /// How long after look `round` at an awaited, unpaid quote the next one comes: the base
    /// interval while the subscription does not cover it; while it does, the base doubled per
    /// look so far, up to the cap.
    fn wait(self, round: u32, covered: bool) -> Duration {
        if !covered {
            return self.base;
        }
        let doubled = self.base.saturating_mul(1u32 << round.min(20));
        doubled.min(self.cap.max(self.base))
    }
}

/// `wait` from `now`, but no later than the last look (a second past it, so that look finds
/// itself due on a clock a little behind the queue's).
fn until(now: DateTime<Utc>, last_look: DateTime<Utc>, wait: Duration) -> Duration {
    let to_last = (last_look - now)
        .to_std()
        .unwrap_or(Duration::ZERO)
        .saturating_add(Duration::from_secs(1));
    wait.min(to_last)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLLS: Polls = Polls {
        base: Duration::from_secs(5),
        cap: Duration::from_secs(60),
    };

    fn look(round: u32, chain: Option<&str>) -> WatchMintQuote {
        WatchMintQuote {
            round,
            chain: chain.map(str::to_owned),
            ..WatchMintQuote::first("q")
        }
    }

    #[test]
    fn covered_quotes_back_off_to_the_cap_and_others_keep_the_base() {
        let waits: Vec<u64> = (0..6).map(|r| POLLS.wait(r, true).as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 60, 60]);
        assert_eq!(POLLS.wait(9, false), POLLS.base);
        assert_eq!(POLLS.wait(u32::MAX, true), POLLS.cap);
    }

    #[test]
    fn only_the_last_look_asks_about_an_ended_quote() {
        let now = Utc::now();
        let last = now + chrono::Duration::seconds(600);
        let ended = |job: &WatchMintQuote, at, covered| plan(job, at, last, false, covered, POLLS);
        assert_eq!(
            ended(&look(3, None), now, true),
            Plan::Wait(Duration::from_secs(601))
        );
        assert_eq!(
            ended(&look(3, None), now, false),
            Plan::Wait(Duration::from_secs(601))
        );
        assert_eq!(ended(&look(3, None), last, true), Plan::Ask);
        // The mint reported it paid: asked at once, ended or not.
        assert_eq!(ended(&look(0, Some(PAID_CHAIN)), now, true), Plan::Ask);
        assert_eq!(
            ended(&look(1, Some(PAID_CHAIN)), now, true),
            Plan::Wait(Duration::from_secs(601))
        );
    }

    #[test]
    fn a_covered_quote_skips_its_first_look() {
        let now = Utc::now();
        let last = now + chrono::Duration::seconds(600);
        let awaited = |round, covered| plan(&look(round, None), now, last, true, covered, POLLS);
        assert_eq!(awaited(0, true), Plan::Wait(POLLS.base));
        assert_eq!(awaited(1, true), Plan::Ask);
        assert_eq!(awaited(0, false), Plan::Ask);
    }

    #[test]
    fn no_wait_passes_the_last_look() {
        let now = Utc::now();
        let last = now + chrono::Duration::seconds(30);
        assert_eq!(until(now, last, POLLS.cap), Duration::from_secs(31));
        assert_eq!(until(now, last, POLLS.base), POLLS.base);
        assert_eq!(until(last, now, POLLS.base), Duration::from_secs(1));
    }
}
