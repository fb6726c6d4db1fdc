//! A payment the offer cannot take (it arrived after the offer moved on, or for the wrong
//! amount) goes back to whoever paid it, P2PK-locked to the key they gave: recorded as a
//! `late_refund` payout and released by the release job like every payout.

use sqlx::PgConnection;
use uuid::Uuid;

use super::settle::record_and_release;
use super::TradeError;
use crate::db::payouts::NewPayout;
use crate::domain::money::Party;
use crate::domain::payout::PayoutPurpose;
use crate::wallet::WalletId;

/// A payment to send back.
#[derive(Debug, Clone)]
pub struct LatePayment<'a> {
    /// The offer it was meant for.
    pub offer_id: Uuid,
    /// Who paid it.
    pub payer: Party,
    /// The wallet holding it.
    pub wallet: &'a WalletId,
    /// Sats received.
    pub sats: u64,
    /// The payer's key.
    pub refund_pubkey: &'a str,
    /// What it answers (a quote id, a funding token's reference), so it is refunded once.
    pub reference: &'a str,
}

/// Records the refund and enqueues its release, in the caller's transaction.
pub async fn record(conn: &mut PgConnection, p: &LatePayment<'_>) -> Result<(), TradeError> {
    record_and_release(
        conn,
        p.offer_id,
        &[NewPayout {
            offer_id: p.offer_id,
            party: p.payer,
            purpose: PayoutPurpose::LateRefund,
            source_wallet: p.wallet,
            sats: p.sats,
            lock_pubkey: Some(p.refund_pubkey),
            reference: p.reference,
        }],
    )
    .await
}
