//! Whether a quote the mint reports ISSUED was issued to this wallet.
//!
//! ISSUED at the mint says only that somebody minted the quote. With NUT-20 that can only be
//! the holder of the quote's key, but a mint that ignores the lock (or a leaked key) would let
//! a maker mint its own deposit back and leave the offer funded with nothing. So ISSUED counts
//! only with this wallet's own record of the issue: cdk writes an incoming transaction carrying
//! the quote id as Pending before it sends the mint request, and marks it Completed when the
//! proofs are stored (by the mint call, or by saga recovery after a cut: replay or NUT-09
//! restore). A Completed one is our issue, and its amount what we got; a Pending one is our
//! issue still in flight, settled by recovery; none (or only Failed ones) means somebody else
//! minted it.

use cdk::wallet::types::{TransactionDirection, TransactionStatus};
use cdk::wallet::Wallet;

use super::error::WalletError;

/// What the wallet's own records say of a quote's issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Own {
    /// It minted the quote: the sats it got.
    Completed(u64),
    /// Its issue was sent and not settled yet.
    InFlight,
    /// It never minted the quote (or its attempt failed).
    Never,
}

/// For a quote the mint reports ISSUED: the sats wallet `w` got when it minted the quote
/// itself, `None` when it did not (the caller reports `MintOutcome::IssuedElsewhere`). An
/// issue of its own still in flight is settled by saga recovery first; if the mint cannot be
/// asked for it yet, an error (the caller retries).
pub(super) async fn own_issue(w: &Wallet, quote_id: &str) -> Result<Option<u64>, WalletError> {
    let mut own = lookup(w, quote_id).await?;
    if own == Own::InFlight {
        w.recover_incomplete_sagas().await?;
        own = lookup(w, quote_id).await?;
    }
    match own {
        Own::Completed(sats) => Ok(Some(sats)),
        Own::Never => Ok(None),
        Own::InFlight => Err(WalletError::Inconsistent(format!(
            "this wallet's issue of quote {quote_id} is not settled yet"
        ))),
    }
}

async fn lookup(w: &Wallet, quote_id: &str) -> Result<Own, WalletError> {
    let mut completed: Option<u64> = None;
    let mut in_flight = false;
    for tx in w
        .list_transactions(Some(TransactionDirection::Incoming))
        .await?
    {
        if tx.quote_id.as_deref() != Some(quote_id) {
            continue;
        }
        match tx.status {
            TransactionStatus::Completed => {
                let sats = u64::from(tx.amount);
                completed = Some(completed.unwrap_or(0).saturating_add(sats));
            }
            TransactionStatus::Pending => in_flight = true,
            TransactionStatus::Failed => {}
        }
    }
    Ok(match (completed, in_flight) {
        (Some(sats), _) => Own::Completed(sats),
        (None, true) => Own::InFlight,
        (None, false) => Own::Never,
    })
}
