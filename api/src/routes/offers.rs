//! Offers: the book, creation and funding, claiming, the receipt, completion, cancellation and
//! payouts. Each handler: check state, check caller, act. Ecash work (quotes, receiving a funding
//! token) runs in the wallet manager; payouts are recorded here, in the transaction that ends
//! the trade, and released by the worker.

use chrono::{DateTime, Utc};
use openpleb_common::db::offers::{self, BookFilter, NewOffer, Offer};
use openpleb_common::db::payouts::{self, NewPayout};
use openpleb_common::db::quotes::{self, OfferQuote};
use openpleb_common::db::{ledger, providers, receipts, sessions::Session};
use openpleb_common::domain::keys::XOnlyKey;
use openpleb_common::domain::money::{sats_for_fiat, OfferAmounts, Outcome, Party};
use openpleb_common::domain::offer::{transition, Event, OfferStatus};
use openpleb_common::jobs::{enqueue, queues, Schedule, WatchMintQuote};
use openpleb_common::wallet::WalletId;
use poem::web::Data;
use poem::Request;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{Binary, Json};
use poem_openapi::types::multipart::Upload;
use poem_openapi::{ApiResponse, Multipart, Object, OpenApi};
use uuid::Uuid;

use super::ApiTags;
use crate::auth::SessionAuth;
use crate::error::{ApiError, ApiResult};
use crate::ratelimit::ResolvedSession;
use crate::AppState;

/// A Lightning invoice to pay.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
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

/// An offer. Fields a caller may not see are absent.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
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
}

/// Who is looking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    /// No session, or a session that is not a party.
    Public,
    /// The maker.
    Maker,
    /// The taker.
    Taker,
    /// An admin.
    Admin,
}

impl Viewer {
    /// The viewer `session` is for `offer`.
    pub fn of(offer: &Offer, session: Option<&Session>) -> Self {
        match session {
            Some(s) if s.id == offer.maker_session_id => Self::Maker,
            Some(s) if Some(s.id) == offer.taker_session_id => Self::Taker,
            _ => Self::Public,
        }
    }

    /// May this viewer see the offer at all? (DESIGN.md section 2: anonymous callers and other
    /// sessions see public offers only.)
    pub fn can_see(self, offer: &Offer) -> bool {
        match self {
            Self::Public => offer.status().is_public(),
            Self::Maker | Self::Admin => true,
            Self::Taker => true,
        }
    }
}

/// Renders `offer` for `viewer` (who must be allowed to see it).
pub fn view(offer: &Offer, viewer: Viewer) -> OfferView {
    let party = matches!(viewer, Viewer::Maker | Viewer::Admin);
    let status = offer.status();
    let details_for_taker = viewer == Viewer::Taker
        && !matches!(
            status,
            OfferStatus::InvoiceCreated | OfferStatus::InvoicePaid
        );
    OfferView {
        id: offer.id,
        status: offer.status.clone(),
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
            Viewer::Maker => Some("maker".to_owned()),
            Viewer::Taker => Some("taker".to_owned()),
            Viewer::Admin => Some("admin".to_owned()),
            Viewer::Public => None,
        },
        payment_details: (party || details_for_taker).then(|| offer.payment_details.clone()),
        platform_fee_sats: party.then_some(offer.platform_fee_sats),
        maker_bond_sats: party.then_some(offer.maker_bond_sats),
        deposit_sats: party
            .then(|| {
                offer
                    .amounts()
                    .deposit()
                    .and_then(|d| i64::try_from(d).ok())
            })
            .flatten(),
        outcome: (viewer != Viewer::Public)
            .then(|| offer.resolved_outcome.clone())
            .flatten(),
    }
}

/// Create an offer.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateOffer {
    /// Fiat amount in minor units (cents), a positive integer.
    #[oai(validator(minimum(value = "1")))]
    pub fiat_amount: i64,
    /// ISO 4217; must be the platform's currency.
    #[oai(validator(min_length = "3", max_length = "3"))]
    pub currency: String,
    /// Fiat provider.
    pub fiat_provider_id: Uuid,
    /// Where the taker pays: an account or a QR payload.
    #[oai(validator(min_length = "1", max_length = "4096"))]
    pub payment_details: String,
    /// Free text.
    #[oai(validator(max_length = "1000"))]
    pub description: Option<String>,
    /// How long the funded offer stays in the book, seconds (default and maximum in
    /// `GET /config`).
    #[oai(validator(minimum(value = "60")))]
    pub lifetime_secs: Option<u64>,
    /// A fresh per-trade BIP-340 x-only key; refunds and payouts are locked to it.
    #[oai(validator(max_length = "64"))]
    pub maker_payout_pubkey: String,
}

/// A created offer and its deposit invoice.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct CreatedOffer {
    /// The offer (maker view).
    pub offer: OfferView,
    /// Pay this to fund it (or send a Cashu token to `POST /offers/{id}/fund`).
    pub deposit: InvoiceView,
}

/// Fund with a Cashu token.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", deny_unknown_fields)]
pub struct FundOffer {
    /// A token from the platform's mint worth exactly the deposit.
    #[oai(validator(min_length = "1", max_length = "100000"))]
    pub token: String,
}

/// Claim an offer.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClaimOffer {
    /// A fresh per-trade BIP-340 x-only key; the taker's payouts are locked to it.
    #[oai(validator(max_length = "64"))]
    pub taker_payout_pubkey: String,
}

/// A claimed offer and the bond invoice.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct ClaimedOffer {
    /// The offer (taker view).
    pub offer: OfferView,
    /// Pay this bond to proceed.
    pub bond: InvoiceView,
}

/// The receipt upload.
#[derive(Debug, Multipart)]
pub struct ReceiptUpload {
    /// PNG, JPEG or WebP image of the fiat payment.
    pub image: Upload,
    /// Optional note for the maker.
    pub note: Option<String>,
}

/// A payout as its owner sees it.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
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

/// Proof of holding a payout key, for fetching its tokens without a session.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", deny_unknown_fields)]
pub struct PayoutKeyProof {
    /// The payout key given when creating or claiming the offer (x-only hex).
    #[oai(validator(max_length = "64"))]
    pub payout_pubkey: String,
    /// Milliseconds since the epoch, within 60 s of the server's clock.
    pub timestamp: i64,
    /// BIP-340 signature by the payout key over
    /// SHA-256("openpleb-payouts:" ‖ offer id ‖ ":" ‖ timestamp).
    #[oai(validator(max_length = "128"))]
    pub signature: String,
}

/// The message a payout key signs to fetch its tokens.
pub fn payout_proof_message(offer: Uuid, timestamp: i64) -> String {
    format!("openpleb-payouts:{offer}:{timestamp}")
}

impl From<payouts::Payout> for PayoutView {
    fn from(p: payouts::Payout) -> Self {
        Self {
            id: p.id,
            purpose: p.purpose,
            amount_sats: p.amount_sats,
            fee_sats: p.fee_sats,
            // SWEPT (the platform's share, moved on to the treasury) counts as released.
            state: if p.state == "RECORDED" {
                "RECORDED"
            } else {
                "RELEASED"
            }
            .to_owned(),
            token: p.token,
        }
    }
}

/// A page of the book.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct OfferPage {
    /// Offers, newest first.
    pub items: Vec<OfferView>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

#[derive(Debug, ApiResponse)]
enum Created {
    /// Created; pay the deposit invoice.
    #[oai(status = 201)]
    Ok(Json<CreatedOffer>),
}

#[derive(Debug, ApiResponse)]
pub enum ReceiptImage {
    /// The receipt image.
    #[oai(status = 200)]
    Ok(
        Binary<Vec<u8>>,
        #[oai(header = "content-type")] String,
        #[oai(header = "x-receipt-note")] Option<String>,
    ),
}

fn not_found() -> ApiError {
    ApiError::not_found("offer_not_found", "no such offer")
}

fn wrong_state(offer: &Offer) -> ApiError {
    ApiError::conflict(
        "invalid_state",
        format!("not allowed while the offer is {}", offer.status),
    )
}

fn payout_key(s: &str, field: &str) -> Result<XOnlyKey, ApiError> {
    let key: XOnlyKey = s
        .parse()
        .map_err(|e| ApiError::bad_request("invalid_payout_pubkey", format!("{field}: {e}")))?;
    if key.to_string() != s {
        return Err(ApiError::bad_request(
            "invalid_payout_pubkey",
            format!("{field} must be lowercase hex"),
        ));
    }
    Ok(key)
}

fn deadline(d: std::time::Duration) -> DateTime<Utc> {
    Utc::now() + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

fn unix(secs: u64) -> DateTime<Utc> {
    DateTime::from_timestamp(i64::try_from(secs).unwrap_or(i64::MAX), 0).unwrap_or_else(Utc::now)
}

fn sniff_image(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a]) {
        Some("image/png")
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if bytes.len() > 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

fn cursor_of(o: &Offer) -> String {
    format!("{}_{}", o.created_at.timestamp_micros(), o.id.simple())
}

fn parse_cursor(c: &str) -> Result<(DateTime<Utc>, Uuid), ApiError> {
    let bad = || ApiError::bad_request("invalid_cursor", "cursor is not one this API returned");
    let (t, id) = c.split_once('_').ok_or_else(bad)?;
    let micros: i64 = t.parse().map_err(|_| bad())?;
    let at = DateTime::from_timestamp_micros(micros).ok_or_else(bad)?;
    Ok((at, Uuid::parse_str(id).map_err(|_| bad())?))
}

async fn load(state: &AppState, id: Uuid) -> Result<Offer, ApiError> {
    offers::get(&state.pool, id).await?.ok_or_else(not_found)
}

/// Loads an offer the session may act on as `role`, or 404 (not revealing others' offers).
async fn load_as(
    state: &AppState,
    id: Uuid,
    session: &Session,
    role: Viewer,
) -> Result<Offer, ApiError> {
    let offer = load(state, id).await?;
    let viewer = Viewer::of(&offer, Some(session));
    if viewer == role {
        return Ok(offer);
    }
    if viewer.can_see(&offer) {
        let who = if role == Viewer::Maker {
            "maker"
        } else {
            "taker"
        };
        return Err(ApiError::forbidden(
            "not_your_role",
            format!("only the {who} may do this"),
        ));
    }
    Err(not_found())
}

/// Offer endpoints.
#[derive(Debug)]
pub struct OffersApi;

#[OpenApi(tag = "ApiTags::Offers")]
impl OffersApi {
    /// The book
    ///
    /// Funded offers (INVOICE_PAID), newest first; with a session, also that session's own
    /// offers in any status.
    #[oai(path = "/offers", method = "get", operation_id = "listOffers")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        state: Data<&AppState>,
        req: &Request,
        /// Only this currency.
        currency: Query<Option<String>>,
        /// Only this fiat provider.
        #[oai(name = "providerId")]
        provider_id: Query<Option<Uuid>>,
        /// Fiat amount at least (minor units).
        #[oai(name = "minFiat", validator(minimum(value = "0")))]
        min_fiat: Query<Option<i64>>,
        /// Fiat amount at most (minor units).
        #[oai(name = "maxFiat", validator(minimum(value = "0")))]
        max_fiat: Query<Option<i64>>,
        /// Page size (1-100, default 20).
        #[oai(
            default = "default_limit",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        limit: Query<i64>,
        /// From a previous page's `nextCursor`.
        #[oai(validator(max_length = "80"))]
        cursor: Query<Option<String>>,
    ) -> ApiResult<Json<OfferPage>> {
        let session = req
            .extensions()
            .get::<ResolvedSession>()
            .map(|r| r.0.clone());
        let filter = BookFilter {
            currency: currency.0,
            provider: provider_id.0,
            min_fiat_minor: min_fiat.0,
            max_fiat_minor: max_fiat.0,
            own_session: session.as_ref().map(|s| s.id),
            before: cursor.0.as_deref().map(parse_cursor).transpose()?,
            limit: *limit + 1,
        };
        let mut rows = offers::list(&state.pool, &filter).await?;
        let next_cursor = if rows.len() > usize::try_from(*limit).unwrap_or(0) {
            rows.pop();
            rows.last().map(cursor_of)
        } else {
            None
        };
        let items = rows
            .iter()
            .map(|o| view(o, Viewer::of(o, session.as_ref())))
            .collect();
        Ok(Json(OfferPage { items, next_cursor }))
    }

    /// One offer
    ///
    /// Public offers for anyone; other statuses only for the maker and the taker.
    #[oai(path = "/offers/:id", method = "get", operation_id = "getOffer")]
    async fn get(
        &self,
        state: Data<&AppState>,
        req: &Request,
        id: Path<Uuid>,
    ) -> ApiResult<Json<OfferView>> {
        let session = req
            .extensions()
            .get::<ResolvedSession>()
            .map(|r| r.0.clone());
        let offer = load(&state, *id).await?;
        let viewer = Viewer::of(&offer, session.as_ref());
        if !viewer.can_see(&offer) {
            return Err(not_found().into());
        }
        Ok(Json(view(&offer, viewer)))
    }

    /// Create an offer (maker)
    ///
    /// Converts the fiat amount at the current price, freezes fees and bonds, and returns the
    /// deposit invoice D = S + PF + TF + MB. Status CREATED until the deposit arrives.
    #[oai(path = "/offers", method = "post", operation_id = "createOffer")]
    async fn create(
        &self,
        auth: SessionAuth,
        state: Data<&AppState>,
        body: Json<CreateOffer>,
    ) -> ApiResult<Created> {
        let b = body.0;
        let c = &state.config;
        // Check the input.
        if b.currency.to_ascii_uppercase() != c.limits.fiat_currency {
            return Err(ApiError::bad_request(
                "unsupported_currency",
                format!("this platform trades {}", c.limits.fiat_currency),
            )
            .into());
        }
        if u64::try_from(b.fiat_amount).unwrap_or(u64::MAX) > c.limits.max_fiat_amount_minor {
            return Err(ApiError::bad_request(
                "fiat_amount_too_large",
                format!("at most {} minor units", c.limits.max_fiat_amount_minor),
            )
            .into());
        }
        let key = payout_key(&b.maker_payout_pubkey, "makerPayoutPubkey")?;
        let lifetime = match b.lifetime_secs {
            Some(s) if std::time::Duration::from_secs(s) > c.timers.invoice_paid_max => {
                return Err(ApiError::bad_request(
                    "lifetime_too_long",
                    format!("at most {} s", c.timers.invoice_paid_max.as_secs()),
                )
                .into())
            }
            Some(s) => s,
            None => c.timers.invoice_paid_default.as_secs(),
        };
        match providers::get(&state.pool, b.fiat_provider_id).await? {
            Some(p) if p.active => {}
            _ => {
                return Err(ApiError::bad_request(
                    "unknown_fiat_provider",
                    "no such active fiat provider",
                )
                .into())
            }
        }
        // Price and amounts.
        let price = state
            .price
            .price(&c.limits.fiat_currency)
            .await
            .map_err(|e| ApiError::unavailable("price_unavailable", e.to_string()))?;
        let fiat = u64::try_from(b.fiat_amount).unwrap_or(0);
        let escrow = sats_for_fiat(fiat, price.minor_per_btc)
            .ok_or_else(|| ApiError::bad_request("fiat_amount_too_large", "amount overflows"))?;
        let amounts = OfferAmounts::new(escrow, &c.fees)
            .ok_or_else(|| ApiError::bad_request("fiat_amount_too_large", "amount overflows"))?;
        let deposit = amounts.deposit().unwrap_or(0);

        // Act: the deposit invoice in the maker's wallet, then offer, quote and watcher in one
        // transaction. A failure after the quote leaves only an unpaid invoice behind.
        let wallet = WalletId::session(auth.0.id);
        let quote = state
            .wallets
            .create_mint_quote(&wallet, deposit)
            .await
            .map_err(|e| ApiError::unavailable("mint_unavailable", e.to_string()))?;
        let id = Uuid::new_v4();
        let created_deadline = deadline(c.timers.created).min(unix(quote.expiry));
        let mut tx = state.pool.begin().await?;
        let offer = offers::insert(
            &mut tx,
            &NewOffer {
                id,
                maker_session_id: auth.0.id,
                fiat_amount_minor: b.fiat_amount,
                fiat_currency: c.limits.fiat_currency.clone(),
                fiat_provider_id: b.fiat_provider_id,
                payment_details: b.payment_details,
                description: b.description,
                price_minor_per_btc: i64::try_from(price.minor_per_btc).unwrap_or(i64::MAX),
                amounts,
                maker_payout_pubkey: key.to_string(),
                lifetime_secs: i64::try_from(lifetime).unwrap_or(i64::MAX),
                expires_at: created_deadline,
            },
        )
        .await?;
        offers::set_deposit_quote(&mut tx, id, &quote.quote_id).await?;
        watch_quote(
            &mut tx,
            &OfferQuote {
                quote_id: &quote.quote_id,
                wallet_id: wallet.as_str(),
                amount_sats: deposit,
                expires_at: unix(quote.expiry),
                offer_id: id,
                purpose: "deposit",
                refund_pubkey: &offer.maker_payout_pubkey,
            },
        )
        .await?;
        tx.commit().await?;
        let offer = load(&state, id).await?;
        Ok(Created::Ok(Json(CreatedOffer {
            offer: view(&offer, Viewer::Maker),
            deposit: InvoiceView {
                quote_id: quote.quote_id,
                invoice: quote.request,
                amount_sats: deposit,
                expires_at: unix(quote.expiry),
            },
        })))
    }

    /// Fund an offer with a Cashu token (maker)
    ///
    /// The alternative to paying the deposit invoice: a token from the platform's mint worth
    /// the deposit plus the mint's input fee for receiving it (nothing, at a mint without
    /// fees). What the fee leaves beyond the deposit goes back to the maker's payout key when
    /// the session ends; a token that leaves less than the deposit is refunded whole (409
    /// `offer_not_fundable`).
    #[oai(path = "/offers/:id/fund", method = "post", operation_id = "fundOffer")]
    async fn fund(
        &self,
        auth: SessionAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        body: Json<FundOffer>,
    ) -> ApiResult<Json<OfferView>> {
        let offer = load_as(&state, *id, &auth.0, Viewer::Maker).await?;
        if offer.status() != OfferStatus::Created {
            return Err(wrong_state(&offer).into());
        }
        let deposit = offer.amounts().deposit().unwrap_or(0);
        let token = cdk::nuts::Token::from_str(body.token.trim())
            .map_err(|_| ApiError::bad_request("invalid_token", "not a Cashu token"))?;
        let mint_ok = token
            .mint_url()
            .map(|u| u.to_string().trim_end_matches('/') == state.config.mint.url)
            .unwrap_or(false);
        if !mint_ok {
            return Err(ApiError::bad_request(
                "token_wrong_mint",
                format!("tokens must come from {}", state.config.mint.url),
            )
            .into());
        }
        let value: u64 = token
            .value()
            .map_err(|_| ApiError::bad_request("invalid_token", "not a Cashu token"))?
            .into();
        if value < deposit {
            return Err(ApiError::bad_request(
                "token_amount_mismatch",
                format!(
                    "the token is worth {value} sats; the deposit is {deposit} plus the mint's input fee"
                ),
            )
            .into());
        }
        let wallet = WalletId::session(auth.0.id);
        let received = state
            .wallets
            .receive(&wallet, body.token.trim(), vec![])
            .await
            .map_err(|e| {
                ApiError::bad_request("invalid_token", format!("the mint refused the token: {e}"))
            })?;
        let reference = format!("token:{}", Uuid::new_v4());
        let mut tx = state.pool.begin().await?;
        let moved = if received >= deposit {
            offers::fund(&mut tx, &offer, "token").await?
        } else {
            None
        };
        if moved.is_some() {
            // The offer's books hold the deposit. What the mint's fee left beyond it (a few sats;
            // too little to send back on its own at a mint that charges per swap) stays in the
            // session's wallet, and the session's cleanup sweeps it to the maker's key.
            ledger::record(&mut tx, offer.id, "deposit", "in", deposit, &reference).await?;
        } else {
            ledger::record(&mut tx, offer.id, "deposit", "in", received, &reference).await?;
            // Received, but it cannot fund the offer (paid meanwhile, or the mint's fee left
            // less than the deposit): the sats go back to the maker's payout key.
            payouts::record_one(
                &mut tx,
                &NewPayout {
                    offer_id: offer.id,
                    party: Party::Maker,
                    purpose: "late_refund",
                    source_wallet: &wallet,
                    sats: received,
                    lock_pubkey: Some(&offer.maker_payout_pubkey),
                    reference: &reference,
                },
            )
            .await?;
            payouts::enqueue_release(&mut tx, offer.id).await?;
            tx.commit().await?;
            return Err(ApiError::conflict(
                "offer_not_fundable",
                "the offer could not be funded; the token's value is refunded to your payout key",
            )
            .into());
        }
        tx.commit().await?;
        Ok(Json(view(&load(&state, offer.id).await?, Viewer::Maker)))
    }

    /// Claim an offer (taker)
    ///
    /// One claimer wins; the others get 409 `offer_not_available` and pay nothing. The winner
    /// gets the bond invoice; the offer leaves the book until the claim lapses.
    #[oai(
        path = "/offers/:id/claim",
        method = "post",
        operation_id = "claimOffer"
    )]
    async fn claim(
        &self,
        auth: SessionAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        body: Json<ClaimOffer>,
    ) -> ApiResult<Json<ClaimedOffer>> {
        let offer = load(&state, *id).await?;
        let viewer = Viewer::of(&offer, Some(&auth.0));
        // An offer that was never in the book stays unknown; one that left it was claimed.
        if !viewer.can_see(&offer) && offer.status() == OfferStatus::Created {
            return Err(not_found().into());
        }
        if viewer == Viewer::Maker {
            return Err(ApiError::forbidden("own_offer", "you cannot claim your own offer").into());
        }
        let key = payout_key(&body.taker_payout_pubkey, "takerPayoutPubkey")?;
        if offer.status() != OfferStatus::InvoicePaid {
            return Err(
                ApiError::conflict("offer_not_available", "the offer is not available").into(),
            );
        }
        let c = &state.config;
        let mut tx = state.pool.begin().await?;
        let claimed = offers::claim(
            &mut tx,
            offer.id,
            auth.0.id,
            &key.to_string(),
            deadline(c.timers.invoice_created),
        )
        .await?;
        let Some(claimed) = claimed else {
            return Err(
                ApiError::conflict("offer_not_available", "the offer is not available").into(),
            );
        };
        tx.commit().await?;

        // Won: the bond invoice in the taker's wallet. Should that fail, the claim is undone.
        let wallet = WalletId::session(auth.0.id);
        let bond = u64::try_from(claimed.taker_bond_sats).unwrap_or(0);
        let quote = match state.wallets.create_mint_quote(&wallet, bond).await {
            Ok(q) => q,
            Err(e) => {
                let mut tx = state.pool.begin().await?;
                offers::unclaim(&mut tx, offer.id, auth.0.id).await?;
                tx.commit().await?;
                return Err(ApiError::unavailable("mint_unavailable", e.to_string()).into());
            }
        };
        let mut tx = state.pool.begin().await?;
        offers::set_bond_quote(&mut tx, offer.id, auth.0.id, &quote.quote_id).await?;
        watch_quote(
            &mut tx,
            &OfferQuote {
                quote_id: &quote.quote_id,
                wallet_id: wallet.as_str(),
                amount_sats: bond,
                expires_at: unix(quote.expiry),
                offer_id: offer.id,
                purpose: "bond",
                refund_pubkey: &key.to_string(),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(Json(ClaimedOffer {
            offer: view(&load(&state, offer.id).await?, Viewer::Taker),
            bond: InvoiceView {
                quote_id: quote.quote_id,
                invoice: quote.request,
                amount_sats: bond,
                expires_at: unix(quote.expiry),
            },
        }))
    }

    /// Upload the payment receipt (taker)
    ///
    /// Multipart: `image` (PNG, JPEG or WebP, checked by content; at most `RECEIPT_MAX_BYTES`)
    /// and an optional `note`. Moves the offer to RECEIPT_SUBMITTED.
    #[oai(
        path = "/offers/:id/receipt",
        method = "post",
        operation_id = "submitReceipt"
    )]
    async fn submit_receipt(
        &self,
        auth: SessionAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        upload: ReceiptUpload,
    ) -> ApiResult<Json<OfferView>> {
        let offer = load_as(&state, *id, &auth.0, Viewer::Taker).await?;
        if offer.status() != OfferStatus::TakerBondPaid {
            return Err(wrong_state(&offer).into());
        }
        if upload.image.size() > state.config.limits.receipt_max_bytes {
            return Err(ApiError::new(
                poem::http::StatusCode::PAYLOAD_TOO_LARGE,
                "receipt_too_large",
                format!("at most {} bytes", state.config.limits.receipt_max_bytes),
            )
            .into());
        }
        let note = upload.note.filter(|n| !n.trim().is_empty());
        if note.as_ref().is_some_and(|n| n.chars().count() > 1000) {
            return Err(ApiError::bad_request("note_too_long", "at most 1000 characters").into());
        }
        let bytes = upload.image.into_vec().await.map_err(ApiError::internal)?;
        let content_type = sniff_image(&bytes).ok_or_else(|| {
            ApiError::bad_request(
                "receipt_not_an_image",
                "the receipt must be a PNG, JPEG or WebP image",
            )
        })?;
        let mut tx = state.pool.begin().await?;
        let to = transition(OfferStatus::TakerBondPaid, Event::SubmitReceipt)
            .map_err(ApiError::internal)?;
        let moved = offers::transition(
            &mut tx,
            offer.id,
            OfferStatus::TakerBondPaid,
            to,
            Some(deadline(state.config.timers.receipt_submitted)),
        )
        .await?;
        if moved.is_none() {
            return Err(wrong_state(&offer).into());
        }
        receipts::insert(&mut tx, offer.id, content_type, &bytes, note.as_deref()).await?;
        tx.commit().await?;
        Ok(Json(view(&load(&state, offer.id).await?, Viewer::Taker)))
    }

    /// The payment receipt (maker and taker)
    #[oai(
        path = "/offers/:id/receipt",
        method = "get",
        operation_id = "getReceipt"
    )]
    async fn receipt(
        &self,
        auth: SessionAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> ApiResult<ReceiptImage> {
        let offer = load(&state, *id).await?;
        if Viewer::of(&offer, Some(&auth.0)) == Viewer::Public {
            return Err(not_found().into());
        }
        receipt_of(&state, offer.id).await
    }

    /// Confirm the fiat arrived (maker)
    ///
    /// COMPLETED: the taker gets S + TF + TB, the maker MB back, the platform PF; payouts are
    /// recorded now and released by the worker (`GET /offers/{id}/payouts`).
    #[oai(
        path = "/offers/:id/complete",
        method = "post",
        operation_id = "completeOffer"
    )]
    async fn complete(
        &self,
        auth: SessionAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> ApiResult<Json<OfferView>> {
        let offer = load_as(&state, *id, &auth.0, Viewer::Maker).await?;
        let to = transition(offer.status(), Event::Confirm).map_err(|_| wrong_state(&offer))?;
        let mut tx = state.pool.begin().await?;
        let moved = offers::transition(&mut tx, offer.id, offer.status(), to, None)
            .await?
            .ok_or_else(|| wrong_state(&offer))?;
        payouts::record_settlement(&mut tx, &moved, Outcome::Completed, true).await?;
        tx.commit().await?;
        Ok(Json(view(&load(&state, offer.id).await?, Viewer::Maker)))
    }

    /// Cancel an unclaimed offer (maker)
    ///
    /// CANCELLED; a funded deposit is refunded in full to the maker's payout key.
    #[oai(
        path = "/offers/:id/cancel",
        method = "post",
        operation_id = "cancelOffer"
    )]
    async fn cancel(
        &self,
        auth: SessionAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> ApiResult<Json<OfferView>> {
        let offer = load_as(&state, *id, &auth.0, Viewer::Maker).await?;
        let from = offer.status();
        let to = transition(from, Event::Cancel).map_err(|_| wrong_state(&offer))?;
        let mut tx = state.pool.begin().await?;
        let moved = offers::transition(&mut tx, offer.id, from, to, None)
            .await?
            .ok_or_else(|| wrong_state(&offer))?;
        if from == OfferStatus::InvoicePaid {
            payouts::record_settlement(&mut tx, &moved, Outcome::RefundMaker, false).await?;
        }
        tx.commit().await?;
        Ok(Json(view(&load(&state, offer.id).await?, Viewer::Maker)))
    }

    /// Your payouts for an offer
    ///
    /// Tokens are shown only to their owner: the maker sees the maker's, the taker the taker's.
    #[oai(
        path = "/offers/:id/payouts",
        method = "get",
        operation_id = "getPayouts"
    )]
    async fn payouts(
        &self,
        auth: SessionAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> ApiResult<Json<Vec<PayoutView>>> {
        let offer = load(&state, *id).await?;
        let party = match Viewer::of(&offer, Some(&auth.0)) {
            Viewer::Maker => Some("maker"),
            Viewer::Taker => Some("taker"),
            _ => None,
        };
        let rows = payouts::for_offer(&state.pool, offer.id).await?;
        // A payment that arrived late (e.g. the bond of a lapsed claim) is refunded to whoever
        // paid it, even though that session is no longer a party.
        let own_wallet = WalletId::session(auth.0.id);
        let mine = |p: &payouts::Payout| {
            Some(p.party.as_str()) == party
                || (p.purpose == "late_refund" && p.source_wallet == own_wallet.as_str())
        };
        if party.is_none() && !rows.iter().any(mine) {
            return Err(not_found().into());
        }
        Ok(Json(
            rows.into_iter()
                .filter(|p| mine(p))
                .map(PayoutView::from)
                .collect(),
        ))
    }
}

/// Payout endpoints that need no session.
#[derive(Debug)]
pub struct PayoutKeysApi;

#[OpenApi(tag = "ApiTags::Offers")]
impl PayoutKeysApi {
    /// Payouts for a payout key, without a session
    ///
    /// Sessions expire; payouts wait for their key. Proving the key (a signature over the
    /// offer id and a fresh timestamp) returns every payout of the offer locked to it.
    #[oai(
        path = "/offers/:id/payouts/by-key",
        method = "post",
        operation_id = "getPayoutsByKey"
    )]
    async fn by_key(
        &self,
        state: Data<&AppState>,
        id: Path<Uuid>,
        body: Json<PayoutKeyProof>,
    ) -> ApiResult<Json<Vec<PayoutView>>> {
        use openpleb_common::domain::registration::{check_timestamp, verify_signature};
        let key = payout_key(&body.payout_pubkey, "payoutPubkey")?;
        check_timestamp(body.timestamp, Utc::now().timestamp_millis())
            .map_err(|e| ApiError::bad_request("stale_timestamp", e.to_string()))?;
        let digest = cdk_common::bitcoin::hashes::Hash::to_byte_array(
            <cdk_common::bitcoin::hashes::sha256::Hash as cdk_common::bitcoin::hashes::Hash>::hash(
                payout_proof_message(*id, body.timestamp).as_bytes(),
            ),
        );
        verify_signature(&key, digest, &body.signature)
            .map_err(|e| ApiError::bad_request("invalid_signature", e.to_string()))?;
        let offer = load(&state, *id).await?;
        let key = key.to_string();
        let rows = payouts::for_offer(&state.pool, offer.id).await?;
        Ok(Json(
            rows.into_iter()
                .filter(|p| p.lock_pubkey.as_deref() == Some(key.as_str()))
                .map(PayoutView::from)
                .collect(),
        ))
    }
}

/// Records a quote and enqueues its watcher in the caller's transaction.
async fn watch_quote(tx: &mut sqlx::PgConnection, q: &OfferQuote<'_>) -> Result<(), ApiError> {
    quotes::insert_for_offer(tx, q).await?;
    let job = WatchMintQuote {
        quote_id: q.quote_id.to_owned(),
        round: 0,
    };
    enqueue(
        tx,
        queues::WATCH_MINT_QUOTE,
        &job,
        Schedule {
            delay: Some(std::time::Duration::from_secs(1)),
            max_attempts: Some(10),
            idempotency_key: Some(job.idempotency_key()),
        },
    )
    .await
    .map_err(ApiError::internal)?;
    Ok(())
}

/// The receipt image of an offer.
pub async fn receipt_of(state: &AppState, offer_id: Uuid) -> ApiResult<ReceiptImage> {
    let receipts::Receipt {
        content_type,
        image,
        note,
    } = receipts::get(&state.pool, offer_id)
        .await?
        .ok_or_else(|| ApiError::not_found("receipt_not_found", "no receipt yet"))?;
    // A header cannot carry every character; the note is plain text, so percent-escape it.
    let note = note.map(|n| {
        n.chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c.to_string()
                } else {
                    format!("%{:02X}", u32::from(c) & 0xff)
                }
            })
            .collect::<String>()
    });
    Ok(ReceiptImage::Ok(Binary(image), content_type, note))
}

fn default_limit() -> i64 {
    20
}

use std::str::FromStr;
