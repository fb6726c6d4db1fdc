//! Funding an offer with a Cashu token instead of paying its deposit invoice: the api checks
//! the token, seals it to the workers' key and hands it to a worker (`202`); the maker follows
//! the intent or waits for the offer's move to INVOICE_PAID.

use chrono::{DateTime, Utc};
use openpleb_common::db::fund_intents::FundIntent;
use openpleb_common::trade::fund::{fund, intent};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use uuid::Uuid;

use crate::auth::SessionAuth;
use crate::error::ApiResult;
use crate::routes::ApiTags;
use crate::AppState;

/// Fund with a Cashu token.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct FundOffer {
    /// A token from the platform's mint worth the deposit plus the mint's fee for receiving it.
    #[oai(validator(max_length = "100000", pattern = "^cashu[AB][A-Za-z0-9_+/=-]+$"))]
    pub token: String,
}

/// Where a funding token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FundIntentState {
    /// Checked and handed to a worker, not received yet.
    Open,
    /// Received; it funded the offer.
    Funded,
    /// Received, but the offer could no longer take it: refunded to the maker's payout key.
    Refunded,
    /// Not received (see `reason`): the token's value was not taken.
    Abandoned,
}

/// Why a funding intent ended without funding its offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum FundIntentReason {
    /// The mint refused the token as spent (spent elsewhere after it was checked).
    TokenSpent,
    /// The mint refused the token as invalid.
    TokenInvalid,
    /// Received after the offer was funded or moved on (or the fee left less than the
    /// deposit): refunded to the maker's payout key.
    OfferNotFundable,
}

/// A token on its way into the maker's session wallet.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct FundIntentView {
    /// The intent's id.
    pub id: Uuid,
    /// The offer it funds.
    pub offer_id: Uuid,
    // Where it is. (No doc comment: it would make the field `allOf` the enum's schema and a
    // description, which client generators refuse; the enum's own schema describes it.)
    pub state: FundIntentState,
    /// The token's face value.
    pub value_sats: u64,
    /// Sats received, once received (the face value less the mint's fee).
    pub received_sats: Option<u64>,
    // Why it did not fund the offer, if it did not (the enum's schema describes it).
    pub reason: Option<FundIntentReason>,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
    /// When it ended.
    pub settled_at: Option<DateTime<Utc>>,
}

impl From<&FundIntent> for FundIntentView {
    fn from(i: &FundIntent) -> Self {
        let state = match i.state.as_str() {
            "FUNDED" => FundIntentState::Funded,
            "REFUNDED" => FundIntentState::Refunded,
            "ABANDONED" => FundIntentState::Abandoned,
            _ => FundIntentState::Open,
        };
        let reason = i.reason.as_deref().and_then(|r| match r {
            "token_spent" => Some(FundIntentReason::TokenSpent),
            "token_invalid" => Some(FundIntentReason::TokenInvalid),
            "offer_not_fundable" => Some(FundIntentReason::OfferNotFundable),
            _ => None,
        });
        Self {
            id: i.id,
            offer_id: i.offer_id,
            state,
            value_sats: u64::try_from(i.value_sats).unwrap_or(0),
            received_sats: i.received_sats.and_then(|s| u64::try_from(s).ok()),
            reason,
            created_at: i.created_at,
            settled_at: i.settled_at,
        }
    }
}

#[derive(Debug, ApiResponse)]
enum Accepted {
    /// Checked and handed to a worker: the offer moves to INVOICE_PAID once it is received.
    #[oai(status = 202)]
    Ok(Json<FundIntentView>),
}

/// Funding with a token.
#[derive(Debug)]
pub struct FundingApi;

#[OpenApi(tag = "ApiTags::Offers")]
impl FundingApi {
    /// Fund an offer with a Cashu token (maker)
    ///
    /// The alternative to paying the deposit invoice: a token from the platform's mint worth
    /// the deposit plus the mint's input fee for receiving it (nothing, at a mint without
    /// fees). The api checks it without spending it (its mint, unit and keysets, its value),
    /// seals it to the workers' key (the api cannot open it again) and
    /// answers `202` with the funding intent; a worker receives the token and moves the offer
    /// to INVOICE_PAID, which the maker hears like any other move (events, push, webhook) or
    /// reads at `GET /offers/{id}/fund/{intentId}`. A token spent meanwhile ends the intent
    /// ABANDONED with reason `token_spent`; one received after the offer moved on is refunded
    /// whole to the maker's payout key (REFUNDED, `offer_not_fundable`). What the fee leaves
    /// beyond the deposit goes back to the maker's payout key when the session ends.
    ///
    /// 400 `token_in_use` while the same token funds another intent; 503 `mint_unavailable`
    /// (with `Retry-After`) while the mint cannot be reached.
    #[oai(path = "/offers/:id/fund", method = "post", operation_id = "fundOffer")]
    async fn fund(
        &self,
        auth: SessionAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        body: Json<FundOffer>,
    ) -> ApiResult<Accepted> {
        let intent = fund(&state.ctx, auth.0.id, *id, &body.token).await?;
        Ok(Accepted::Ok(Json(FundIntentView::from(&intent))))
    }

    /// A funding intent (maker)
    ///
    /// Where a token given to `POST /offers/{id}/fund` is: OPEN until a worker received it,
    /// then FUNDED, REFUNDED or ABANDONED (with `reason`).
    #[oai(
        path = "/offers/:id/fund/:intent_id",
        method = "get",
        operation_id = "getFundIntent"
    )]
    async fn intent(
        &self,
        auth: SessionAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        intent_id: Path<Uuid>,
    ) -> ApiResult<Json<FundIntentView>> {
        let found = intent(&state.ctx, auth.0.id, *id, *intent_id).await?;
        Ok(Json(FundIntentView::from(&found)))
    }
}
