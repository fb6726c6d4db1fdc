//! What offers, invoices and payouts look like on the wire, per viewer: fields a caller may not
//! see are absent (DESIGN.md section 2).

use chrono::{DateTime, Utc};
use openpleb_common::db::claims::Claim;
use openpleb_common::db::offers::Offer;
use openpleb_common::db::payouts::Payout;
use openpleb_common::domain::offer::OfferStatus;
use openpleb_common::trade::quote::Invoice;
use openpleb_common::trade::{Role, Viewer};
use poem_openapi::Object;
use uuid::Uuid;

/// A Lightning invoice to pay.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct InvoiceView {
    /// The mint's quote id.
    pub quote_id: String,
    /// BOLT11 invoice.
    pub invoice: String,
    /// Sats to pay.
    pub amount_sats: u64,
    /// The invoice stops being payable.
    pub expires_at: DateTime<Utc>,
}

impl From<Invoice> for InvoiceView {
    fn from(i: Invoice) -> Self {
        Self {
            quote_id: i.quote_id,
            invoice: i.request,
            amount_sats: i.amount_sats,
            expires_at: i.expires_at,
        }
    }
}

/// An offer. Fields a caller may not see are absent.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct OfferView {
    /// Id.
    pub id: Uuid,
    /// Status.
    pub status: String,
    /// Fiat amount in minor units (cents).
    pub fiat_amount: i64,
    /// ISO 4217.
    pub currency: String,
    /// Fiat provider.
    pub fiat_provider_id: Uuid,
    /// Free text from the maker.
    pub description: Option<String>,
    /// Sats the fiat is worth (S), paid to the taker on completion.
    pub amount_sats: i64,
    /// Taker reward (TF).
    pub taker_reward_sats: i64,
    /// Bond the taker pays when claiming (TB); returned on completion.
    pub taker_bond_sats: i64,
    /// Price frozen at creation, minor units per BTC.
    pub price_per_btc: i64,
    /// Deadline of the current status.
    pub expires_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Your role: `maker`, `taker` or absent.
    pub role: Option<String>,
    /// Where to pay the fiat (maker always; taker once the bond is paid), until deleted.
    pub payment_details: Option<String>,
    /// When the offer's trade data (payment details, receipt, evidence, dispute messages) was
    /// deleted, `RETENTION_TRADE_DATA_DAYS` after it became final.
    pub trade_data_deleted_at: Option<DateTime<Utc>>,
    /// Platform fee (PF), maker only.
    pub platform_fee_sats: Option<i64>,
    /// Maker bond (MB), maker only.
    pub maker_bond_sats: Option<i64>,
    /// The deposit D = S + PF + TF + MB, maker only.
    pub deposit_sats: Option<i64>,
    /// How the trade settled (terminal offers, parties only).
    pub outcome: Option<String>,
    /// Reputation tokens the maker staked on it.
    pub maker_stake: i32,
    /// Reputation tokens a taker must stake to claim it.
    pub min_taker_stake: i32,
    /// Reputation tokens the taker staked (parties only).
    pub taker_stake: Option<i32>,
    /// Claims waiting for their bonds (listed offers). A claim does not take the offer out of
    /// the book; the first bond paid does. In the anonymous book this may lag by
    /// `BOOK_CACHE_MS`.
    pub pending_claims: i32,
}

/// Renders `offer` for `viewer` (who must be allowed to see it).
pub fn view(offer: &Offer, viewer: Viewer) -> OfferView {
    let maker_or_admin = matches!(viewer, Viewer::Party(Role::Maker) | Viewer::Admin);
    // A session is the offer's taker only once its bond won the offer.
    let details_for_taker = viewer == Viewer::Party(Role::Taker);
    OfferView {
        id: offer.id,
        status: offer.status.as_str().to_owned(),
        fiat_amount: offer.fiat_amount_minor,
        currency: offer.fiat_currency.clone(),
        fiat_provider_id: offer.fiat_provider_id,
        description: offer.description.clone(),
        amount_sats: offer.amount_sats,
        taker_reward_sats: offer.taker_reward_sats,
        taker_bond_sats: offer.taker_bond_sats,
        price_per_btc: offer.price_minor_per_btc,
        expires_at: offer.expires_at,
        created_at: offer.created_at,
        role: match viewer {
            Viewer::Party(r) => Some(r.as_str().to_owned()),
            Viewer::Admin => Some("admin".to_owned()),
            Viewer::Public => None,
        },
        payment_details: (maker_or_admin || details_for_taker)
            .then(|| offer.payment_details.clone())
            .flatten(),
        trade_data_deleted_at: offer.trade_data_deleted_at,
        platform_fee_sats: maker_or_admin.then_some(offer.platform_fee_sats),
        maker_bond_sats: maker_or_admin.then_some(offer.maker_bond_sats),
        deposit_sats: maker_or_admin
            .then(|| {
                offer
                    .amounts()
                    .deposit()
                    .and_then(|d| i64::try_from(d).ok())
            })
            .flatten(),
        outcome: (viewer != Viewer::Public)
            .then(|| offer.resolved_outcome.map(|o| o.as_str().to_owned()))
            .flatten(),
        maker_stake: offer.maker_stake,
        min_taker_stake: offer.min_taker_stake,
        taker_stake: (viewer != Viewer::Public).then_some(offer.taker_stake),
        pending_claims: if offer.status == OfferStatus::InvoicePaid {
            offer.pending_claims
        } else {
            0
        },
    }
}

/// A claim as its taker sees it.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ClaimView {
    /// Id.
    pub id: Uuid,
    /// The offer claimed.
    pub offer_id: Uuid,
    /// `PENDING` (its bond invoice is out, the offer still listed; 409 `already_claimed` on
    /// another claim of the same offer meanwhile), `WON` (its bond was minted first: you are
    /// the offer's taker), `LAPSED` (its bond was not paid in time) or
    /// `LOST` (the offer left the book before its bond arrived: another bond won, the maker
    /// cancelled, or the listing ended). A bond paid for a claim that did not win is refunded
    /// to its payout key (`GET /offers/{id}/payouts`, purpose `late_refund`).
    pub status: String,
    /// Pay the bond before this.
    pub expires_at: DateTime<Utc>,
    // The bond invoice, while the claim waits for it.
    pub bond: Option<InvoiceView>,
    /// Reputation tokens staked with it.
    pub stake: i32,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it won, lapsed or was lost.
    pub ended_at: Option<DateTime<Utc>>,
}

impl From<&Claim> for ClaimView {
    fn from(c: &Claim) -> Self {
        Self {
            id: c.id,
            offer_id: c.offer_id,
            status: c.status.as_str().to_owned(),
            expires_at: c.expires_at,
            bond: match (&c.bond_quote_id, &c.bond_invoice, c.bond_invoice_expires_at) {
                (Some(q), Some(i), Some(at)) if !c.status.is_final() => Some(InvoiceView {
                    quote_id: q.clone(),
                    invoice: i.clone(),
                    amount_sats: u64::try_from(c.bond_sats).unwrap_or(0),
                    expires_at: at,
                }),
                _ => None,
            },
            stake: c.stake,
            created_at: c.created_at,
            ended_at: c.ended_at,
        }
    }
}

/// A payout as its owner sees it.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct PayoutView {
    /// Id.
    pub id: Uuid,
    /// `settlement`, `refund`, `late_refund` or `sweep`.
    pub purpose: String,
    /// Sats owed.
    pub amount_sats: i64,
    /// Mint fees paid out of it when it was released; the token is worth
    /// `amountSats - feeSats`.
    pub fee_sats: i64,
    /// `RECORDED` (not yet released) or `RELEASED`.
    pub state: String,
    /// Cashu token, P2PK-locked to your payout key; redeem it with that key.
    pub token: Option<String>,
}

impl From<Payout> for PayoutView {
    fn from(p: Payout) -> Self {
        use openpleb_common::domain::payout::PayoutState;
        Self {
            id: p.id,
            purpose: p.purpose.as_str().to_owned(),
            amount_sats: p.amount_sats,
            fee_sats: p.fee_sats,
            // SWEPT (the platform's share, moved on to the treasury) counts as released.
            state: if p.state.is_released() {
                PayoutState::Released
            } else {
                PayoutState::Recorded
            }
            .as_str()
            .to_owned(),
            token: p.token,
        }
    }
}

/// A page of the book.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct OfferPage {
    /// Offers, newest first.
    pub items: Vec<OfferView>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}
