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
//! Safe to repeat: candidates are re-read from PostgreSQL each run; a sweep is a payout row
//! unique per (offer, party, purpose, wallet, ref), released by the idempotent release job; the
//! wallet is deleted only after its sweep is released (a later run), and deleting a file that is
//! gone is a no-op. An archive copy replaces any earlier copy of the same wallet, so a run
//! repeated after a crash between the copy and the deletion archives it again, whole.

use std::sync::Arc;

use apalis::prelude::{BoxDynError, Data};
use futures::stream::{self, StreamExt};
use openpleb_common::db::payouts::NewPayout;
use openpleb_common::db::{sessions, wallet_checks};
use openpleb_common::domain::payout::PayoutPurpose;
use openpleb_common::jobs::CleanupWallets;
use openpleb_common::trade::settle::record_and_release;
use openpleb_common::wallet::{Funds, WalletError, WalletId};
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
    /// Idle money found; a sweep payout was recorded (deleted next run, once released).
    Swept,
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
    let candidates = sessions::cleanup_candidates(&ctx.pool, limit).await?;
    let results: Vec<Result<Cleaned, BoxDynError>> = stream::iter(candidates)
        .map(|session| async move {
            let result = clean(ctx, session).await?;
            if matches!(result, Cleaned::NoWallet | Cleaned::Deleted) {
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
    results.into_iter().collect()
}

/// Wallets cleaned at once by one run.
const AT_ONCE: usize = 8;

async fn clean(ctx: &WorkerContext, session: Uuid) -> Result<Cleaned, BoxDynError> {
    let wallet = WalletId::session(session);
    if !ctx.wallets.exists(&wallet) {
        return Ok(Cleaned::NoWallet);
    }
    let archive = match &ctx.config.wallets.archive_dir {
        Some(dir) if sessions::disputed_or_admin_touched(&ctx.pool, session).await? => {
            Some(dir.clone())
        }
        _ => None,
    };
    let held = ctx.wallets.balance(&wallet).await?;
    // An operation in flight, or one the reconciliation has yet to settle.
    if held.reserved > 0 || held.pending > 0 {
        return Ok(Cleaned::Kept);
    }
    if held.unspent > 0 && held.unspent <= ctx.wallets.fee_to_spend_all(&wallet).await? {
        // Worth nothing once the mint's input fee is paid: no token could carry any of it.
        tracing::warn!(wallet = %wallet, sats = held.unspent, "deleting an ended session's wallet holding only dust below the mint's fee");
        return match ctx
            .wallets
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
        record_and_release(
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
        )
        .await?;
        tx.commit().await?;
        // The release may run on another worker: give the lease back now rather than at the
        // idle close, so it does not wait for it.
        ctx.wallets.close(&wallet).await?;
        tracing::warn!(wallet = %wallet, sats = held.unspent, "swept idle sats of an ended session");
        return Ok(Cleaned::Swept);
    }
    // Tokens this wallet sent that may still be unclaimed are not counted as held: every one
    // is stored as a released payout (candidates have none left to release), so the file is no
    // longer needed for them.
    match ctx
        .wallets
        .delete_archiving(&wallet, Funds::MustBeEmpty, archive)
        .await
    {
        Ok(()) => Ok(Cleaned::Deleted),
        Err(WalletError::Busy(_)) => Ok(Cleaned::Kept),
        Err(e) => Err(e.into()),
    }
}
