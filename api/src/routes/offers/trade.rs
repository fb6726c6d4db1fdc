//! The trade after the book: claiming, the receipt, completion and cancellation.

use openpleb_common::trade::claim::{self, claim};
use openpleb_common::trade::receipt::{self, Upload as ReceiptInput};
use openpleb_common::trade::{cancel, complete, Role, Viewer};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::types::multipart::Upload;
use poem_openapi::{Multipart, Object, OpenApi};
use uuid::Uuid;

use super::views::{view, ClaimView, InvoiceView, OfferView};
use super::{receipt_response, ReceiptImage};
use crate::auth::SessionAuth;
use crate::error::{ApiError, ApiResult};
use crate::routes::notify::NotifyBody;
use crate::routes::reputation::{reputation_of, ReputationInput};
use crate::routes::ApiTags;
use crate::AppState;

/// Claim an offer.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ClaimOffer {
    /// A fresh per-trade BIP-340 x-only key; the taker's payouts are locked to it.
    #[oai(validator(pattern = "^[0-9a-f]{64}$"))]
    pub taker_payout_pubkey: String,
    // Your reputation outputs and stake (at least the offer's `minTakerStake` tokens).
    pub reputation: Option<ReputationInput>,
    // Where you are told what becomes of your claim and, once it wins, of the trade.
    pub notify: Option<NotifyBody>,
}

/// A claim made, the offer (still listed) and the bond invoice.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ClaimedOffer {
    // Your claim (PENDING until its bond is minted).
    pub claim: ClaimView,
    // The offer, as the book shows it: still listed.
    pub offer: OfferView,
    // Pay this bond to win the offer.
    pub bond: InvoiceView,
    /// The signing secret of the webhook given in `notify`, shown this once.
    pub webhook_secret: Option<String>,
}

/// The receipt upload.
#[derive(Debug, Multipart)]
pub struct ReceiptUpload {
    /// PNG, JPEG or WebP image of the fiat payment.
    pub image: Upload,
    /// Optional note for the maker.
    pub note: Option<String>,
}

/// The trade's moves.
#[derive(Debug)]
pub struct TradeApi;

#[OpenApi(tag = "ApiTags::Offers")]
impl TradeApi {
    /// Claim an offer (taker)
    ///
    /// Makes a claim with its own bond invoice and deadline (`TIMER_INVOICE_CREATED_SECS`, or
    /// the end of the offer's listing if that comes first). The offer stays in the book: other
    /// takers may claim it too, and the first bond paid (minted) wins it. The winner's claim
    /// becomes `WON` and the offer `TAKER_BOND_PAID`, with the payment details shown to the
    /// winner only; every other claim becomes `LOST` and a bond paid for it is refunded in
    /// full to its payout key (less only the mint's fees, shown as `feeSats`). Follow your claim
    /// with `GET /offers/{id}/claim`. A claim notifies nobody.
    ///
    /// A claim costs a mint invoice, so: 409 `too_many_unpaid_claims` while the session holds
    /// `CLAIM_MAX_UNPAID` pending claims; 409 `too_many_claims` while the offer has
    /// `CLAIM_MAX_PENDING_PER_OFFER`; 409 `too_many_payable_invoices` while the session holds
    /// `QUOTE_MAX_PAYABLE` invoices that can still be paid; 429 `claim_cooldown` (with
    /// `Retry-After`) when the session let its claim of this offer lapse within the last
    /// `CLAIM_COOLDOWN_SECS`; 409 `offer_not_available` when the offer is not listed.
    ///
    /// 503 `mint_unavailable` (with `Retry-After`) while the mint cannot be reached.
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
        let b = body.0;
        let rep = reputation_of(b.reputation)?;
        let notify = b.notify.map(|n| n.targets()).unwrap_or_default();
        let claimed = claim(
            &state.ctx,
            auth.0.id,
            *id,
            &b.taker_payout_pubkey,
            rep,
            &notify,
        )
        .await?;
        Ok(Json(ClaimedOffer {
            claim: ClaimView::from(&claimed.claim),
            offer: view(&claimed.offer, Viewer::Public),
            bond: claimed.bond.into(),
            webhook_secret: claimed.webhook_secret,
        }))
    }

    /// Your claim of an offer (taker)
    ///
    /// The session's latest claim of this offer: `PENDING`, `WON`, `LAPSED` or `LOST`. 404
    /// `claim_not_found` when it never claimed it.
    #[oai(path = "/offers/:id/claim", method = "get", operation_id = "getClaim")]
    async fn get_claim(
        &self,
        auth: SessionAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> ApiResult<Json<ClaimView>> {
        let c = claim::of_session(&state.ctx, auth.0.id, *id).await?;
        Ok(Json(ClaimView::from(&c)))
    }

    /// Upload the payment receipt (taker)
    ///
    /// Multipart: `image` (PNG, JPEG or WebP, checked by content; at most `RECEIPT_MAX_BYTES`)
    /// and an optional `note`. Moves the offer to RECEIPT_SUBMITTED. The body is read only
    /// from the offer's taker: anyone else gets 401, 404 or 403 before a byte of it is read.
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
        let image = upload.image.into_vec().await.map_err(ApiError::internal)?;
        let input = ReceiptInput {
            image,
            note: upload.note,
        };
        let offer = receipt::submit(&state.ctx, auth.0.id, *id, input).await?;
        Ok(Json(view(&offer, Viewer::Party(Role::Taker))))
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
        receipt_response(receipt::get(&state.ctx, Some(auth.0.id), *id).await?)
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
        let offer = complete::complete(&state.ctx, auth.0.id, *id).await?;
        Ok(Json(view(&offer, Viewer::Party(Role::Maker))))
    }

    /// Cancel an offer before a bond wins it (maker)
    ///
    /// CANCELLED; a funded deposit is refunded in full to the maker's payout key, and claims
    /// still waiting for their bonds are lost (a bond paid for one is refunded to its payer).
    /// A bond and a cancel at the same moment: exactly one of them moves the offer. 409
    /// `deadline_passed` once the state's deadline has passed (the offer expires with the same
    /// refund).
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
        let offer = cancel::cancel(&state.ctx, auth.0.id, *id).await?;
        Ok(Json(view(&offer, Viewer::Party(Role::Maker))))
    }
}
