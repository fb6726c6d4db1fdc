//! Session expiry: the wallets of ended sessions that back no live offer, owe no pending
//! payout and have no quote that can still be paid (`sessions::cleanup_candidates`) are emptied
//! and deleted. Money in such a wallet (it should not happen: every sat that
//! enters is paid out by a settlement) is swept back, P2PK-locked to the payout key of the
//! session's last offer, before the file goes. A wallet is deleted only when nothing unspent or
//! reserved is left in it and every token it sent is stored as a released payout; or when what
//! is left is dust the mint's input fee would eat whole. With `WALLETS_ARCHIVE_DIR` set, the
//! file of a session whose trade went through a dispute or an admin action is copied there
//! first (`wallet::archive`), under the same lock as the deletion.
//!
//! A sweep is released by the run that records it, while it holds the wallet (one open per
//! wallet instead of three: record, release job, deleting run), and the wallet deleted at once.
//!
//! Safe to repeat: candidates are re-read from PostgreSQL each run; a sweep is a payout row
//! unique per (offer, party, purpose, wallet, ref), recorded with a delayed release job in one
//! transaction before any ecash moves, and released by the release job's own idempotent code
//! (here or by that job, whichever comes first; the other finds it released); the wallet is
//! deleted only once its sweep is released and nothing is left in it, and deleting a file that
//! is gone is a no-op. An archive copy replaces any earlier copy of the same wallet, so a run
//! repeated after a crash between the copy and the deletion archives it again, whole.

use std::sync::Arc;

use apalis::prelude::{BoxDynError, Data};
use futures::stream::{self, StreamExt};
use openpleb_common::db::payouts::NewPayout;
use openpleb_common::db::{sessions, wallet_checks};
use openpleb_common::domain::payout::PayoutPurpose;
use openpleb_common::jobs::{CleanupWallets, ReleasePayouts};
use openpleb_common::trade::settle::record_with_backstop;
use openpleb_common::wallet::{Funds, WalletError, WalletId};

use super::release_payouts;
use uuid::Uuid;

use crate::WorkerContext;

/// Handles one cleanup run.
pub async fn handle(job: CleanupWallets, ctx: Data<Arc<WorkerContext>>) -> Result<(), BoxDynError> {
    let _ = job;
    super::with_timeout(run(&ctx, 200)).await.map(|_| ())
}

/// What happened to one session's wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cleaned {
    /// No file.
    NoWallet,
    /// Deleted.
    Deleted,
    /// Idle money found; a sweep payout was recorded, and the release is left to its job
    /// (the wallet is deleted by a later run, once it is released).
    Swept,
    /// Idle money found, swept, released and the wallet deleted, all in this run.
    SweptAndDeleted,
    /// Kept (money with nowhere to go, or an operation in flight); reported.
    Kept,
}

/// Cleans up to `limit` candidate sessions; returns what happened to each. Sessions whose
/// wallet is gone are marked, so later runs move on to newer ones.
///
/// Several wallets at a time: each is its own file under its own lease, and most of a wallet's
/// time here is spent waiting for the mint and PostgreSQL. The first error is returned after
/// the others have run.
pub async fn run(ctx: &WorkerContext, limit: i64) -> Result<Vec<Cleaned>, BoxDynError> {
    // Claimed, so a run of the next cron slot on another worker, starting while this one is
    // still busy, takes other sessions.
    let candidates = sessions::claim_cleanup_candidates(&ctx.pool, limit, CLAIM_HOLD).await?;
    let results: Vec<Result<Cleaned, BoxDynError>> = stream::iter(candidates.iter().copied())
        .map(|session| async move {
            let result = clean(ctx, session).await?;
            if matches!(
                result,
                Cleaned::NoWallet | Cleaned::Deleted | Cleaned::SweptAndDeleted
            ) {
                if let Some(lived) = sessions::mark_wallet_removed(&ctx.pool, session).await? {
                    openpleb_common::metrics::session_cleaned(lived);
                }
                wallet_checks::forget(&ctx.pool, &WalletId::session(session)).await?;
            }
            Ok(result)
        })
        .buffer_unordered(AT_ONCE)
        .collect()
        .await;
    sessions::release_cleanup_claims(&ctx.pool, &candidates).await?;
    results.into_iter().collect()
}

/// How long a run's claims hold if it never gives them back: past the run's own time limit.
const CLAIM_HOLD: std::time::Duration =
    super::JOB_TIMEOUT.saturating_add(std::time::Duration::from_secs(30));

/// Wallets cleaned at once by one run.
const AT_ONCE: usize = 8;

/// When the release job recorded beside a sweep runs, should the run's own release not finish.
const RELEASE_BACKSTOP: std::time::Duration = std::time::Duration::from_secs(30);

async fn clean(ctx: &WorkerContext, session: Uuid) -> Result<Cleaned, BoxDynError> {
    let wallet = WalletId::session(session);
    if !ctx.wallets()?.exists(&wallet) {
        return Ok(Cleaned::NoWallet);
    }
    let archive = match ctx.wallets()?.archive() {
        Some((dir, _)) if sessions::disputed_or_admin_touched(&ctx.pool, session).await? => {
            Some(dir.to_path_buf())
        }
        _ => None,
    };
    let held = ctx.wallets()?.balance(&wallet).await?;
    // An operation in flight, or one the reconciliation has yet to settle.
    if held.reserved > 0 || held.pending > 0 {
        return Ok(Cleaned::Kept);
    }
    if held.unspent > 0 && held.unspent <= ctx.wallets()?.fee_to_spend_all(&wallet).await? {
        // Worth nothing once the mint's input fee is paid: no token could carry any of it.
        tracing::warn!(wallet = %wallet, sats = held.unspent, "deleting an ended session's wallet holding only dust below the mint's fee");
        return match ctx
            .wallets()?
            .delete_archiving(
                &wallet,
                Funds::AccountedFor("dust below the mint's input fee".to_owned()),
                archive,
            )
            .await
        {
            Ok(()) => Ok(Cleaned::Deleted),
            Err(WalletError::Busy(_)) => Ok(Cleaned::Kept),
            Err(e) => Err(e.into()),
        };
    }
    if held.unspent > 0 {
        let Some((offer, role, key)) = sessions::last_payout_key(&ctx.pool, session).await? else {
            tracing::error!(wallet = %wallet, sats = held.unspent,
                "ended session's wallet holds sats and no payout key; keeping it");
            return Ok(Cleaned::Kept);
        };
        let mut tx = ctx.pool.begin().await?;
        // The job is the backstop, should this run die before the release below: late enough
        // that it does not wait for the wallet this run holds.
        record_with_backstop(
            &mut tx,
            offer,
            &[NewPayout {
                offer_id: offer,
                party: role.party(),
                purpose: PayoutPurpose::Sweep,
                source_wallet: &wallet,
                sats: held.unspent,
                lock_pubkey: Some(&key),
                reference: &format!("sweep:{}", held.unspent),
            }],
            RELEASE_BACKSTOP,
        )
        .await?;
        tx.commit().await?;
        tracing::warn!(wallet = %wallet, sats = held.unspent, "swept idle sats of an ended session");
        // Released here, with the wallet open and leased already: a release job would open it
        // again, and a third run would open it once more to delete it, and
        // each open costs expiry throughput. Recorded before released, as every payout is.
        if let Err(e) = release_payouts::run(ReleasePayouts { offer_id: offer }, ctx).await {
            tracing::warn!(wallet = %wallet, error = %e, "sweep not released yet; its job retries");
            ctx.wallets()?.close(&wallet).await?;
            return Ok(Cleaned::Swept);
        }
        let left = ctx.wallets()?.balance(&wallet).await?;
        if left.unspent > 0 || left.reserved > 0 || left.pending > 0 {
            return Ok(Cleaned::Swept);
        }
        return match ctx
            .wallets()?
            .delete_archiving(&wallet, Funds::MustBeEmpty, archive)
            .await
        {
            Ok(()) => Ok(Cleaned::SweptAndDeleted),
            Err(WalletError::Busy(_)) => Ok(Cleaned::Swept),
            Err(e) => Err(e.into()),
        };
    }
    // Tokens this wallet sent that may still be unclaimed are not counted as held: every one
    // is stored as a released payout (candidates have none left to release), so the file is no
    // longer needed for them.
    match ctx
        .wallets()?
        .delete_archiving(&wallet, Funds::MustBeEmpty, archive)
        .await
    {
        Ok(()) => Ok(Cleaned::Deleted),
        Err(WalletError::Busy(_)) => Ok(Cleaned::Kept),
        Err(e) => Err(e.into()),
    }
}
