//! Trade steps that are more than one repository call but involve no ecash: what happens when a
//! deposit or bond quote is paid. Called inside the caller's transaction.

use chrono::Utc;
use sqlx::PgConnection;

use crate::db::payouts::{self, NewPayout};
use crate::db::quotes::WalletQuote;
use crate::db::{ledger, offers};
use crate::domain::money::Party;
use crate::domain::offer::{transition, Event, OfferStatus, Timers};
use crate::wallet::WalletId;

/// What paying a quote did to its offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paid {
    /// The offer moved on (deposit → INVOICE_PAID, bond → TAKER_BOND_PAID).
    Advanced(OfferStatus),
    /// The offer had moved on without this payment (cancelled, expired, claim lapsed) or the
    /// amount was wrong: the sats are refunded to the payer's key.
    Refunded,
}

fn deadline(d: std::time::Duration) -> chrono::DateTime<Utc> {
    Utc::now() + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Applies a paid quote of an offer: `sats` were minted into `quote.wallet_id`.
pub async fn quote_paid(
    conn: &mut PgConnection,
    timers: &Timers,
    quote: &WalletQuote,
    sats: u64,
) -> Result<Option<Paid>, sqlx::Error> {
    let (Some(offer_id), Some(purpose)) = (quote.offer_id, quote.purpose.as_deref()) else {
        return Ok(None);
    };
    let Some(offer) = offers::get_for_update(conn, offer_id).await? else {
        return Ok(None);
    };
    let kind = if purpose == "deposit" {
        "deposit"
    } else {
        "bond"
    };
    ledger::record(conn, offer.id, kind, "in", sats, &quote.quote_id).await?;

    let amounts = offer.amounts();
    let advanced = if purpose == "deposit" {
        let right = Some(sats) == amounts.deposit()
            && offer.deposit_quote_id.as_deref() == Some(quote.quote_id.as_str());
        if right && offer.status() == OfferStatus::Created {
            offers::fund(conn, &offer, "lightning")
                .await?
                .map(|_| OfferStatus::InvoicePaid)
        } else {
            None
        }
    } else {
        let right = sats == amounts.taker_bond
            && offer.bond_quote_id.as_deref() == Some(quote.quote_id.as_str())
            && offer
                .taker_session_id
                .map(WalletId::session)
                .as_ref()
                .map(WalletId::as_str)
                == Some(quote.wallet_id.as_str());
        if right && offer.status() == OfferStatus::InvoiceCreated {
            let to = transition(OfferStatus::InvoiceCreated, Event::BondPaid)
                .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
            offers::transition(
                conn,
                offer.id,
                OfferStatus::InvoiceCreated,
                to,
                Some(deadline(timers.taker_bond_paid)),
            )
            .await?
            .map(|_| to)
        } else {
            None
        }
    };
    if let Some(status) = advanced {
        return Ok(Some(Paid::Advanced(status)));
    }

    // Paid late or wrong: never accepted; the sats go back to whoever paid.
    let wallet =
        WalletId::parse(&quote.wallet_id).map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
    let party = if purpose == "deposit" {
        Party::Maker
    } else {
        Party::Taker
    };
    let key = quote
        .refund_pubkey
        .clone()
        .ok_or_else(|| sqlx::Error::Protocol("quote without a refund key".to_owned()))?;
    tracing::warn!(offer = %offer.id, quote = %quote.quote_id, sats, purpose,
        "payment arrived late or for the wrong amount; refunding it");
    payouts::record_one(
        conn,
        &NewPayout {
            offer_id: offer.id,
            party,
            purpose: "late_refund",
            source_wallet: &wallet,
            sats,
            lock_pubkey: Some(&key),
            reference: &quote.quote_id,
        },
    )
    .await?;
    payouts::enqueue_release(conn, offer.id).await?;
    Ok(Some(Paid::Refunded))
}
