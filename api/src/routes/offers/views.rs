//! What offers, invoices and payouts look like on the wire, per viewer: fields a caller may not
//! see are absent (DESIGN.md section 2).

use chrono::{DateTime, Utc};
use openpleb_common::db::offers::Offer;
use openpleb_common::db::payouts::Payout;
use openpleb_common::domain::offer::OfferStatus;
use openpleb_common::trade::paid::Invoice;
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
    /// Where to pay the fiat (maker always; taker once the bond is paid).
    pub payment_details: Option<String>,
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
}

/// Renders `offer` for `viewer` (who must be allowed to see it).
pub fn view(offer: &Offer, viewer: Viewer) -> OfferView {
    let maker_or_admin = matches!(viewer, Viewer::Party(Role::Maker) | Viewer::Admin);
    let details_for_taker = viewer == Viewer::Party(Role::Taker)
        && !matches!(
            offer.status,
            OfferStatus::InvoiceCreated | OfferStatus::InvoicePaid
        );
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
            .then(|| offer.payment_details.clone()),
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
