//! The book: listing it, adding an offer to it (with its deposit invoice), and reading one offer.
//! Public offers for anyone, a session's own offers in any status for that session.

use openpleb_common::db::offers::{self, BookFilter};
use openpleb_common::trade::create::{create, NewOfferInput};
use openpleb_common::trade::{load_visible, Role, Viewer};
use poem::web::Data;
use poem::Request;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use uuid::Uuid;

use super::views::{view, InvoiceView, OfferPage, OfferView};
use crate::auth::ResolvedSession;
use crate::auth::SessionAuth;
use crate::book_cache::PreJson;
use crate::error::{ApiError, ApiResult};
use crate::routes::notify::NotifyBody;
use crate::routes::paging::{cursor_of, page, parse_cursor};
use crate::routes::reputation::{reputation_of, ReputationInput};
use crate::routes::ApiTags;
use crate::AppState;

/// Create an offer.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct CreateOffer {
    /// Fiat amount in minor units (cents), a positive integer.
    #[oai(validator(minimum(value = "1")))]
    pub fiat_amount: i64,
    /// ISO 4217; must be the platform's currency.
    #[oai(validator(pattern = "^[A-Za-z]{3}$"))]
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
    #[oai(validator(pattern = "^[0-9a-f]{64}$"))]
    pub maker_payout_pubkey: String,
    /// Reputation tokens a taker must stake to claim it (default 0, at most
    /// `REPUTATION_MAX_STAKE`).
    #[oai(validator(maximum(value = "1000")))]
    pub min_taker_stake: Option<u32>,
    // Your reputation outputs and stake.
    pub reputation: Option<ReputationInput>,
    // Where you are told what happens to this offer (Web Push, a webhook).
    pub notify: Option<NotifyBody>,
}

/// A created offer and its deposit invoice.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct CreatedOffer {
    // The offer (maker view).
    pub offer: OfferView,
    // Pay this to fund it (or send a Cashu token to `POST /offers/{id}/fund`).
    pub deposit: InvoiceView,
    /// The signing secret of the webhook given in `notify`, shown this once.
    pub webhook_secret: Option<String>,
}

#[derive(Debug, ApiResponse)]
enum Created {
    /// Created; pay the deposit invoice.
    #[oai(status = 201)]
    Ok(Json<CreatedOffer>),
}

/// The session a request carries, if any (resolved once by the rate limiter).
fn session_of(req: &Request) -> Option<Uuid> {
    req.extensions().get::<ResolvedSession>().map(|r| r.0.id)
}

fn default_limit() -> i64 {
    20
}

/// The book.
#[derive(Debug)]
pub struct BookApi;

#[OpenApi(tag = "ApiTags::Offers")]
impl BookApi {
    /// The book
    ///
    /// Funded offers (INVOICE_PAID), newest first; with a session, also that session's own
    /// offers in any status. Without a session a page may come from the api's cache, which
    /// every change to the book clears (`BOOK_CACHE_MS` bounds a page's age).
    #[oai(path = "/offers", method = "get", operation_id = "listOffers")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        state: Data<&AppState>,
        req: &Request,
        /// Only this currency (ISO 4217).
        #[oai(validator(pattern = "^[A-Za-z]{3}$"))]
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
        /// Makers who staked at least this many reputation tokens.
        #[oai(
            name = "minMakerStake",
            validator(minimum(value = "0"), maximum(value = "1000"))
        )]
        min_maker_stake: Query<Option<i32>>,
        /// Page size (1-100, default 20).
        #[oai(
            default = "default_limit",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        limit: Query<i64>,
        /// From a previous page's `nextCursor`.
        #[oai(validator(pattern = "^[0-9]{1,16}_[0-9a-f]{32}$"))]
        cursor: Query<Option<String>>,
    ) -> ApiResult<PreJson<OfferPage>> {
        let session = session_of(req);
        // Anonymous pages are the same for everyone: keyed by the query, which is all of the
        // request that shapes them (its parameters were validated above).
        let cache_key = session
            .is_none()
            .then(|| req.uri().query().unwrap_or_default());
        if let Some(body) = cache_key.and_then(|k| state.book.get(k)) {
            return Ok(PreJson::new(body));
        }
        let stamp = state.book.stamp();
        let filter = BookFilter {
            currency: currency.0,
            provider: provider_id.0,
            min_fiat_minor: min_fiat.0,
            max_fiat_minor: max_fiat.0,
            min_maker_stake: min_maker_stake.0,
            own_session: session,
            before: cursor.0.as_deref().map(parse_cursor).transpose()?,
            limit: *limit + 1,
        };
        let rows = offers::list(&state.ctx.pool, &filter).await?;
        let (rows, next_cursor) = page(rows, *limit, |o| cursor_of(o.created_at, o.id));
        let items = rows
            .iter()
            .map(|o| view(o, Viewer::of(o, session)))
            .collect();
        let page = OfferPage { items, next_cursor };
        let body: bytes::Bytes = serde_json::to_vec(&poem_openapi::types::ToJSON::to_json(&page))
            .map_err(|e| ApiError::internal(format!("book page: {e}")))?
            .into();
        if let Some(key) = cache_key {
            state.book.put(key, stamp, body.clone());
        }
        Ok(PreJson::new(body))
    }

    /// Create an offer (maker)
    ///
    /// Converts the fiat amount at the current price, freezes fees and bonds, and returns the
    /// deposit invoice D = S + PF + TF + MB. Status CREATED until the deposit arrives.
    ///
    /// 409 `too_many_open_offers` when the session already has `OFFER_MAX_OPEN` open offers
    /// (CREATED or INVOICE_PAID).
    ///
    /// 503 `mint_unavailable` (with `Retry-After`) while the mint cannot be reached.
    #[oai(path = "/offers", method = "post", operation_id = "createOffer")]
    async fn create(
        &self,
        auth: SessionAuth,
        state: Data<&AppState>,
        body: Json<CreateOffer>,
    ) -> ApiResult<Created> {
        let b = body.0;
        let created = create(
            &state.ctx,
            NewOfferInput {
                session: auth.0.id,
                fiat_amount_minor: b.fiat_amount,
                currency: b.currency,
                fiat_provider_id: b.fiat_provider_id,
                payment_details: b.payment_details,
                description: b.description,
                lifetime_secs: b.lifetime_secs,
                maker_payout_pubkey: b.maker_payout_pubkey,
                min_taker_stake: b.min_taker_stake.unwrap_or(0),
                reputation: reputation_of(b.reputation)?,
                notify: b.notify.map(|n| n.targets()).unwrap_or_default(),
            },
        )
        .await?;
        Ok(Created::Ok(Json(CreatedOffer {
            offer: view(&created.offer, Viewer::Party(Role::Maker)),
            deposit: created.deposit.into(),
            webhook_secret: created.webhook_secret,
        })))
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
        let (offer, viewer) = load_visible(&state.ctx, *id, session_of(req)).await?;
        Ok(Json(view(&offer, viewer)))
    }
}
