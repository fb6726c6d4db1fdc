//! Whether a wallet received a given token: what settles a funding intent a crash left open.
//!
//! cdk records every receive as an incoming transaction carrying the Ys of the token's proofs,
//! written as Pending before the swap request goes to the mint and marked Completed (or
//! Failed) when the receive, or saga recovery after a cut, finishes. So after recovery a
//! wallet knows, from its own file, whether it took a token: a Completed transaction with the
//! token's Ys means yes, and how much; none (or only Failed ones) means the mint was never
//! asked to swap the token for this wallet, or refused it.

use std::collections::BTreeSet;

use cdk::wallet::types::{TransactionDirection, TransactionStatus};
use cdk::wallet::Wallet;

use super::error::WalletError;
use super::layout::WalletId;
use super::manager::WalletManager;

/// What a wallet knows of a token it may have received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipt {
    /// Received: the sats it brought after the mint's fee.
    Received(u64),
    /// A receive is still unfinished after recovery (the mint could not be asked): ask later.
    InFlight,
    /// Not received (never tried, refused, or rolled back), or the wallet does not exist.
    NotReceived,
}

impl WalletManager {
    /// What the wallet `id` knows of the token whose proofs have the Ys `ys` (hex). Runs saga
    /// recovery first when a receive of it is unfinished. Read-only otherwise: safe to repeat.
    pub async fn receipt_of(&self, id: &WalletId, ys: &[String]) -> Result<Receipt, WalletError> {
        let wanted: BTreeSet<String> = ys.iter().map(|y| y.to_ascii_lowercase()).collect();
        let result = self
            .run(id, false, move |w| async move {
                match lookup(&w, &wanted).await? {
                    Receipt::InFlight => {
                        w.recover_incomplete_sagas().await?;
                        lookup(&w, &wanted).await
                    }
                    found => Ok(found),
                }
            })
            .await;
        match result {
            Err(WalletError::NotFound(_)) => Ok(Receipt::NotReceived),
            other => other,
        }
    }
}

async fn lookup(w: &Wallet, wanted: &BTreeSet<String>) -> Result<Receipt, WalletError> {
    let mut found = Receipt::NotReceived;
    for tx in w
        .list_transactions(Some(TransactionDirection::Incoming))
        .await?
    {
        let ys: BTreeSet<String> = tx.ys.iter().map(|y| y.to_hex()).collect();
        if &ys != wanted {
            continue;
        }
        match tx.status {
            TransactionStatus::Completed => return Ok(Receipt::Received(tx.amount.into())),
            TransactionStatus::Pending => found = Receipt::InFlight,
            TransactionStatus::Failed => {}
        }
    }
    Ok(found)
}
