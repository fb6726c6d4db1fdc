//! Payouts: by session for the offer's parties, or by proving the payout key without one.

use openpleb_common::trade::payouts::{for_key, for_session, KeyProof};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use uuid::Uuid;

use super::views::PayoutView;
use crate::auth::SessionAuth;
use crate::error::ApiResult;
use crate::routes::ApiTags;
use crate::AppState;

/// Proof of holding a payout key, for fetching its tokens without a session.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct PayoutKeyProof {
    /// The payout key given when creating or claiming the offer (x-only hex).
    #[oai(validator(pattern = "^[0-9a-f]{64}$"))]
    pub payout_pubkey: String,
    /// Milliseconds since the epoch, within 60 s of the server's clock.
    pub timestamp: i64,
    /// BIP-340 signature by the payout key over
    /// SHA-256("openpleb-payouts:" ‖ offer id ‖ ":" ‖ timestamp).
    #[oai(validator(pattern = "^[0-9a-fA-F]{128}$"))]
    pub signature: String,
}

/// A session's payouts.
#[derive(Debug)]
pub struct PayoutsApi;

#[OpenApi(tag = "ApiTags::Offers")]
impl PayoutsApi {
    /// Your payouts for an offer
    ///
    /// Tokens are shown only to their owner: those locked to the payout key this session gave
    /// as the offer's maker or current taker, and refunds of a payment this session made (e.g.
    /// a bond paid after its claim lapsed). A later taker never sees an earlier one's refund.
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
        let rows = for_session(&state.ctx, auth.0.id, *id).await?;
        Ok(Json(rows.into_iter().map(PayoutView::from).collect()))
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
        let proof = KeyProof {
            pubkey: &body.payout_pubkey,
            timestamp: body.timestamp,
            signature: &body.signature,
        };
        let rows = for_key(&state.ctx, *id, proof).await?;
        Ok(Json(rows.into_iter().map(PayoutView::from).collect()))
    }
}
