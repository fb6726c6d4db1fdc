//! Funding an offer with a Cashu token instead of paying its deposit invoice.

use openpleb_common::trade::fund::fund;
use openpleb_common::trade::{Role, Viewer};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use uuid::Uuid;

use super::views::{view, OfferView};
use crate::auth::SessionAuth;
use crate::error::ApiResult;
use crate::routes::ApiTags;
use crate::AppState;

/// Fund with a Cashu token.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct FundOffer {
    /// A token from the platform's mint worth exactly the deposit.
    #[oai(validator(max_length = "100000", pattern = "^cashu[AB][A-Za-z0-9_+/=-]+$"))]
    pub token: String,
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
    /// fees). What the fee leaves beyond the deposit goes back to the maker's payout key when
    /// the session ends; a token that leaves less than the deposit is refunded whole (409
    /// `offer_not_fundable`).
    ///
    /// 503 `mint_unavailable` (with `Retry-After`) while the mint cannot be reached.
    #[oai(path = "/offers/:id/fund", method = "post", operation_id = "fundOffer")]
    async fn fund(
        &self,
        auth: SessionAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        body: Json<FundOffer>,
    ) -> ApiResult<Json<OfferView>> {
        let offer = fund(&state.ctx, auth.0.id, *id, &body.token).await?;
        Ok(Json(view(&offer, Viewer::Party(Role::Maker))))
    }
}
