//! Admin views of offers and the sat audit.

use openpleb_common::db::{ledger, offers};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use uuid::Uuid;

use super::offers::{receipt_of, view, OfferView, ReceiptImage, Viewer};
use super::ApiTags;
use crate::auth::AdminAuth;
use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// One offer whose ledger does not balance.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct ImbalanceView {
    /// Offer.
    pub offer_id: Uuid,
    /// Sats in.
    pub sats_in: i64,
    /// Sats out (payouts, platform fee, mint fees).
    pub sats_out: i64,
}

/// The audit's result.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct AuditReport {
    /// Settled offers checked.
    pub offers_checked: i64,
    /// True when every settled offer balances.
    pub balanced: bool,
    /// Offers whose sats in differ from sats out + platform fee + mint fees.
    pub imbalances: Vec<ImbalanceView>,
}

/// Admin offer endpoints.
#[derive(Debug)]
pub struct AdminOffersApi;

#[OpenApi(tag = "ApiTags::Admin")]
impl AdminOffersApi {
    /// Any offer, with all its fields
    #[oai(
        path = "/admin/offers/:id",
        method = "get",
        operation_id = "adminGetOffer"
    )]
    async fn get(
        &self,
        _auth: AdminAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> ApiResult<Json<OfferView>> {
        let offer = offers::get(&state.pool, *id)
            .await?
            .ok_or_else(|| ApiError::not_found("offer_not_found", "no such offer"))?;
        Ok(Json(view(&offer, Viewer::Admin)))
    }

    /// An offer's payment receipt
    #[oai(
        path = "/admin/offers/:id/receipt",
        method = "get",
        operation_id = "adminGetReceipt"
    )]
    async fn receipt(
        &self,
        _auth: AdminAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> ApiResult<ReceiptImage> {
        receipt_of(&state, *id).await
    }

    /// Audit: does every settled offer balance?
    ///
    /// For each offer in a final state with all payouts released: sats in (deposit, bond) must
    /// equal sats out (payouts, platform fee, mint fees).
    #[oai(path = "/admin/audit", method = "get", operation_id = "audit")]
    async fn audit(
        &self,
        _auth: AdminAuth,
        state: Data<&AppState>,
    ) -> ApiResult<Json<AuditReport>> {
        let imbalances = ledger::audit(&state.pool).await?;
        let checked = ledger::settled_count(&state.pool).await?;
        Ok(Json(AuditReport {
            offers_checked: checked,
            balanced: imbalances.is_empty(),
            imbalances: imbalances
                .into_iter()
                .map(|i| ImbalanceView {
                    offer_id: i.offer_id,
                    sats_in: i.sats_in,
                    sats_out: i.sats_out,
                })
                .collect(),
        }))
    }
}
