//! Paying a Lightning invoice out of a wallet (a melt), exactly once per melt quote.
//!
//! The caller records the quote ([`WalletManager::melt_quote`]) before it melts
//! ([`WalletManager::melt`]). A mint melts a quote at most once, so melting by a recorded
//! quote id cannot pay twice however often it is repeated: each call first asks about the quote
//! (cdk finishes or rolls back a melt its saga left unfinished, then asks the mint), and melts
//! only a quote the mint still says is unpaid. Used by treasury withdrawals.

use std::collections::HashMap;

use cdk::nuts::{MeltQuoteState, PaymentMethod};
use cdk::wallet::types::{TransactionDirection, TransactionStatus};

use super::error::WalletError;
use super::layout::WalletId;
use super::manager::WalletManager;
use crate::metrics::wallet_op;

/// A melt quote made for a wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeltQuoted {
    /// The mint's quote id.
    pub quote_id: String,
    /// Sats the invoice asks for.
    pub amount: u64,
    /// Most the mint may charge for routing it.
    pub fee_reserve: u64,
}

/// Where a melt stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Melted {
    /// The invoice is paid (now, or by an earlier call): what the mint charged beyond the
    /// invoice (Lightning fee and input fee), and the preimage when the mint gave one.
    Paid {
        /// Sats charged beyond the invoice's amount.
        fee: u64,
        /// The payment's preimage.
        preimage: Option<String>,
    },
    /// The mint is still paying it; ask again later.
    Pending,
    /// Not paid, and nothing left the wallet: why (expired quote, failed payment, too little
    /// in the wallet). A caller may give up on it.
    NotPaid(String),
}

impl WalletManager {
    /// Asks the mint for a melt quote of the bolt11 `invoice`, kept in the wallet.
    pub async fn melt_quote(
        &self,
        id: &WalletId,
        invoice: &str,
    ) -> Result<MeltQuoted, WalletError> {
        let invoice = invoice.to_owned();
        wallet_op(
            "melt_quote",
            self.run(id, false, move |w| async move {
                let q = w
                    .melt_quote(PaymentMethod::BOLT11, invoice, None, None)
                    .await?;
                Ok(MeltQuoted {
                    quote_id: q.id,
                    amount: q.amount.into(),
                    fee_reserve: q.fee_reserve.into(),
                })
            }),
        )
        .await
    }

    /// Pays the melt quote `quote_id` (made by [`WalletManager::melt_quote`] in this wallet)
    /// unless the mint already paid or is paying it. Safe to repeat, and after a cut anywhere.
    pub async fn melt(&self, id: &WalletId, quote_id: &str) -> Result<Melted, WalletError> {
        let quote_id = quote_id.to_owned();
        wallet_op(
            "melt",
            self.run(id, false, move |w| async move {
                // Resumes the quote's saga if a cut left one, then asks the mint.
                let q = w.check_melt_quote_status(&quote_id).await?;
                match q.state {
                    MeltQuoteState::Paid => {
                        let fee = melt_fee(&w, &quote_id).await?;
                        return Ok(Melted::Paid {
                            fee,
                            preimage: q.payment_proof,
                        });
                    }
                    MeltQuoteState::Pending => return Ok(Melted::Pending),
                    MeltQuoteState::Unpaid | MeltQuoteState::Failed | MeltQuoteState::Unknown => {}
                }
                if q.expiry <= cdk::util::unix_time() {
                    return Ok(Melted::NotPaid("the melt quote expired unpaid".to_owned()));
                }
                let prepared = match w.prepare_melt(&quote_id, HashMap::new()).await {
                    Ok(p) => p,
                    Err(cdk::Error::InsufficientFunds) => {
                        return Ok(Melted::NotPaid(
                            "the treasury holds too little for the invoice and its fee reserve"
                                .to_owned(),
                        ))
                    }
                    Err(e) => return Err(e.into()),
                };
                let done = prepared.confirm().await?;
                Ok(match done.state() {
                    MeltQuoteState::Paid => Melted::Paid {
                        fee: done.fee_paid().into(),
                        preimage: done.payment_proof().map(str::to_owned),
                    },
                    MeltQuoteState::Pending | MeltQuoteState::Unknown => Melted::Pending,
                    MeltQuoteState::Unpaid | MeltQuoteState::Failed => {
                        Melted::NotPaid("the mint could not pay the invoice".to_owned())
                    }
                })
            }),
        )
        .await
    }
}

/// What the wallet recorded as the fee of its completed melt of `quote_id` (0 if it kept no
/// record: a melt finished by recovery on another path).
async fn melt_fee(w: &cdk::wallet::Wallet, quote_id: &str) -> Result<u64, WalletError> {
    let outgoing = w
        .list_transactions(Some(TransactionDirection::Outgoing))
        .await?;
    Ok(outgoing
        .iter()
        .find(|t| {
            t.quote_id.as_deref() == Some(quote_id) && t.status == TransactionStatus::Completed
        })
        .map_or(0, |t| t.fee.into()))
}
