//! Disputes, for the two parties: mark an issue with the receipt (maker), report the payment
//! details (taker), answer an issue (taker), answer the dispute (maker), add evidence, read the
//! dispute. Raising an issue, reporting, disputing or countering a report reveals the caller's
//! registered key: the one record that links a registered user to a trade.

use chrono::Utc;
use openpleb_common::domain::dispute::IssueReason;
use openpleb_common::trade::answer::{answer_dispute, answer_issue, MakerAnswer, TakerAnswer};
use openpleb_common::trade::details::{self, ReportDetails};
use openpleb_common::trade::dispute::{self, Reader};
use openpleb_common::trade::issue::{mark_issue, MarkIssue};
use openpleb_common::trade::reveal::Reveal;
use openpleb_common::trade::{evidence, Role, TradeError, Viewer};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::types::multipart::Upload;
use poem_openapi::{ApiResponse, Enum, Multipart, Object, OpenApi};
use uuid::Uuid;

use super::dispute_views::{DisputeView, StatsView};
use super::offers::{view, OfferView};
use super::ApiTags;
use crate::auth::SessionAuth;
use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// A signed reveal of the caller's registered key.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct RevealBody {
    /// The registered key (BIP-340 x-only, lowercase hex).
    #[oai(validator(pattern = "^[0-9a-f]{64}$"))]
    pub pubkey: String,
    /// Milliseconds since the epoch, within 60 s of the server's clock.
    pub timestamp: i64,
    /// BIP-340 signature by that key over
    /// SHA-256("openpleb-dispute:" ‖ offer id ‖ ":" ‖ role ‖ ":" ‖ timestamp), role `maker` or
    /// `taker`.
    #[oai(validator(pattern = "^[0-9a-fA-F]{128}$"))]
    pub signature: String,
}

impl From<RevealBody> for Reveal {
    fn from(r: RevealBody) -> Self {
        Self {
            pubkey: r.pubkey,
            timestamp: r.timestamp,
            signature: r.signature,
        }
    }
}

/// Why the maker marks an issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum Reason {
    /// The fiat never arrived.
    NotReceived,
    /// The fiat arrived, but not the agreed amount.
    WrongAmount,
    /// Anything else (the message says what).
    Other,
}

impl From<Reason> for IssueReason {
    fn from(r: Reason) -> Self {
        match r {
            Reason::NotReceived => Self::NotReceived,
            Reason::WrongAmount => Self::WrongAmount,
            Reason::Other => Self::Other,
        }
    }
}

/// Mark an issue.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct MarkIssueBody {
    // Why.
    pub reason: Reason,
    /// For the taker and the admins (at most 2,000 characters).
    #[oai(validator(max_length = "2000"))]
    pub message: String,
    // Your registered key, revealed.
    pub reveal: RevealBody,
}

/// The taker's answer to an issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TakerAction {
    /// Give up: the maker gets its deposit and your bond.
    Forfeit,
    /// Dispute the issue (message and reveal required).
    Dispute,
}

/// Answer an issue (taker).
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct AnswerIssueBody {
    // What you do.
    pub action: TakerAction,
    /// For the maker and the admins (DISPUTE; at most 2,000 characters).
    #[oai(validator(max_length = "2000"))]
    pub message: Option<String>,
    // Your registered key, revealed (DISPUTE).
    pub reveal: Option<RevealBody>,
}

/// The maker's answer to a dispute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MakerAction {
    /// Give up: the taker gets the escrow, its reward, its bond and your bond.
    Forfeit,
    /// Maintain the issue (message required); an admin decides.
    Counter,
}

/// Answer a dispute (maker).
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct AnswerDisputeBody {
    // What you do.
    pub action: MakerAction,
    /// For the taker and the admins (COUNTER; at most 2,000 characters).
    #[oai(validator(max_length = "2000"))]
    pub message: Option<String>,
    // Your registered key, revealed (COUNTER on a report about the payment details; ignored on
    // a dispute about the receipt, where you revealed it when you marked the issue).
    pub reveal: Option<RevealBody>,
}

/// Report that the payment details do not work (taker).
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ReportDetailsBody {
    /// What went wrong (a closed account, a wrong QR), for the maker and the admins (at most
    /// 2,000 characters).
    #[oai(validator(max_length = "2000"))]
    pub message: String,
    // Your registered key, revealed.
    pub reveal: RevealBody,
}

/// An evidence upload.
#[derive(Debug, Multipart)]
pub struct EvidenceUpload {
    /// PNG, JPEG or WebP image, at most `RECEIPT_MAX_BYTES`.
    pub image: Upload,
}

/// The id of added evidence.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct EvidenceAdded {
    /// Id.
    pub id: Uuid,
}

/// An evidence image.
#[derive(Debug, ApiResponse)]
pub enum EvidenceImage {
    /// The image.
    #[oai(status = 200)]
    Ok(super::offers::ImageBody),
}

#[derive(Debug, ApiResponse)]
enum Added {
    /// Added.
    #[oai(status = 201)]
    Ok(Json<EvidenceAdded>),
}

/// A signed request for one's own dispute statistics.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct StatsRequest {
    /// Your registered key (BIP-340 x-only, lowercase hex).
    #[oai(validator(pattern = "^[0-9a-f]{64}$"))]
    pub pubkey: String,
    /// Milliseconds since the epoch, within 60 s of the server's clock.
    pub timestamp: i64,
    /// BIP-340 signature by that key over SHA-256("openpleb-stats:" ‖ pubkey ‖ ":" ‖ timestamp).
    #[oai(validator(pattern = "^[0-9a-fA-F]{128}$"))]
    pub signature: String,
}

fn required<T>(v: Option<T>, field: &'static str) -> Result<T, TradeError> {
    v.ok_or_else(|| TradeError::invalid("missing_field", field, format!("{field} is required")))
}

/// Dispute endpoints for the parties.
#[derive(Debug)]
pub struct DisputesApi;

#[OpenApi(tag = "ApiTags::Disputes")]
impl DisputesApi {
    /// Mark an issue (maker)
    ///
    /// In RECEIPT_SUBMITTED: the fiat did not arrive, or not as agreed. **This reveals your
    /// registered pubkey**: the platform records that it made this offer, counts the issue in
    /// its dispute statistics (seen by admins, and by you with a signed request), and locks
    /// your payouts of this offer to it. The taker then forfeits or disputes; its silence for
    /// `TIMER_MARKED_WITH_ISSUE_SECS` is a forfeit.
    #[oai(
        path = "/offers/:id/issue",
        method = "post",
        operation_id = "markIssue"
    )]
    async fn mark_issue(
        &self,
        auth: SessionAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        body: Json<MarkIssueBody>,
    ) -> ApiResult<Json<OfferView>> {
        let b = body.0;
        let input = MarkIssue {
            reason: b.reason.into(),
            message: b.message,
            reveal: b.reveal.into(),
        };
        let offer = mark_issue(&state.ctx, auth.0.id, *id, input).await?;
        Ok(Json(view(&offer, Viewer::Party(Role::Maker))))
    }

    /// Answer an issue (taker)
    ///
    /// In MARKED_WITH_ISSUE. `FORFEIT` ends the trade: the maker gets its deposit and your bond.
    /// `DISPUTE` (with a message and a reveal) sends it to the maker and then an admin. **A
    /// dispute reveals your registered pubkey**: the platform records that you took this offer,
    /// counts the dispute in your statistics, and locks your payouts of this offer to it.
    #[oai(
        path = "/offers/:id/issue/answer",
        method = "post",
        operation_id = "answerIssue"
    )]
    async fn answer_issue(
        &self,
        auth: SessionAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        body: Json<AnswerIssueBody>,
    ) -> ApiResult<Json<OfferView>> {
        let b = body.0;
        let answer = match b.action {
            TakerAction::Forfeit => TakerAnswer::Forfeit,
            TakerAction::Dispute => TakerAnswer::Dispute {
                message: required(b.message, "message")?,
                reveal: required(b.reveal, "reveal")?.into(),
            },
        };
        let offer = answer_issue(&state.ctx, auth.0.id, *id, answer).await?;
        Ok(Json(view(&offer, Viewer::Party(Role::Taker))))
    }

    /// Report that the payment details do not work (taker)
    ///
    /// In TAKER_BOND_PAID, before paying: the account is closed, the QR is wrong. Moves the
    /// offer to DETAILS_DISPUTED. **This reveals your registered pubkey** (as a dispute does).
    /// The maker then forfeits (its bond goes to you beside your own; the rest of its deposit
    /// back to it; no fee is charged) or counters with its own reveal, and an admin decides
    /// (MAKER_WINS, RETURN or BAD_DETAILS); its silence for `TIMER_DETAILS_DISPUTED_SECS` also
    /// leaves it to an admin. 409 `deadline_passed` once the bond's timer ran out.
    #[oai(
        path = "/offers/:id/details-issue",
        method = "post",
        operation_id = "reportPaymentDetails"
    )]
    async fn report_details(
        &self,
        auth: SessionAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        body: Json<ReportDetailsBody>,
    ) -> ApiResult<Json<OfferView>> {
        let b = body.0;
        let input = ReportDetails {
            message: b.message,
            reveal: b.reveal.into(),
        };
        let offer = details::report(&state.ctx, auth.0.id, *id, input).await?;
        Ok(Json(view(&offer, Viewer::Party(Role::Taker))))
    }

    /// Answer a dispute (maker)
    ///
    /// In DISPUTED (the taker disputes your issue with the receipt): `FORFEIT` ends the trade
    /// for the taker (it gets the escrow, its reward, its bond and your bond); `COUNTER` (with a
    /// message) leaves it to an admin. Silence for `TIMER_DISPUTED_SECS` counts as a counter.
    ///
    /// In DETAILS_DISPUTED (the taker reports that your payment details do not work):
    /// `FORFEIT` gives the taker your bond beside its own and you the rest of your deposit;
    /// `COUNTER` (with a message and a reveal: **it reveals your registered pubkey**) leaves it
    /// to an admin. Silence for `TIMER_DETAILS_DISPUTED_SECS` also leaves it to an admin.
    ///
    /// 409 `deadline_passed` once the state's deadline has passed.
    #[oai(
        path = "/offers/:id/dispute/answer",
        method = "post",
        operation_id = "answerDispute"
    )]
    async fn answer_dispute(
        &self,
        auth: SessionAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        body: Json<AnswerDisputeBody>,
    ) -> ApiResult<Json<OfferView>> {
        let b = body.0;
        let answer = match b.action {
            MakerAction::Forfeit => MakerAnswer::Forfeit,
            MakerAction::Counter => MakerAnswer::Counter {
                message: required(b.message, "message")?,
                reveal: b.reveal.map(Into::into),
            },
        };
        let offer = answer_dispute(&state.ctx, auth.0.id, *id, answer).await?;
        Ok(Json(view(&offer, Viewer::Party(Role::Maker))))
    }

    /// The dispute (maker and taker)
    #[oai(
        path = "/offers/:id/dispute",
        method = "get",
        operation_id = "getDispute"
    )]
    async fn get(
        &self,
        auth: SessionAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> ApiResult<Json<DisputeView>> {
        let file = dispute::file(&state.ctx, Reader::Session(auth.0.id), *id).await?;
        Ok(Json(DisputeView::from(&file)))
    }

    /// Add evidence (maker and taker)
    ///
    /// Multipart `image`: PNG, JPEG or WebP, at most `RECEIPT_MAX_BYTES`; at most three per
    /// side, while the dispute is open. Seen by the other party and admins only. The body is
    /// read only from a party of the offer: anyone else gets 401 or 404 before a byte of it is
    /// read.
    #[oai(
        path = "/offers/:id/dispute/evidence",
        method = "post",
        operation_id = "addEvidence"
    )]
    async fn add_evidence(
        &self,
        auth: SessionAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        upload: EvidenceUpload,
    ) -> ApiResult<Added> {
        let image = upload.image.into_vec().await.map_err(ApiError::internal)?;
        let id = evidence::add(&state.ctx, auth.0.id, *id, image).await?;
        Ok(Added::Ok(Json(EvidenceAdded { id })))
    }

    /// Your dispute statistics
    ///
    /// Counted from your reveals only (issues you raised as a maker, disputes you opened as a
    /// taker, and how they ended). Needs no session: sign the request with your registered key.
    #[oai(
        path = "/disputes/stats",
        method = "post",
        operation_id = "getOwnDisputeStats"
    )]
    async fn own_stats(
        &self,
        state: Data<&AppState>,
        body: Json<StatsRequest>,
    ) -> ApiResult<Json<StatsView>> {
        use openpleb_common::domain::dispute::stats_digest;
        use openpleb_common::domain::keys::XOnlyKey;
        use openpleb_common::domain::registration::{check_timestamp, verify_signature};
        let key: XOnlyKey = body
            .pubkey
            .parse()
            .map_err(|e| ApiError::bad_request("malformed_pubkey", format!("pubkey: {e}")))?;
        check_timestamp(body.timestamp, Utc::now().timestamp_millis())
            .map_err(|e| ApiError::bad_request("stale_timestamp", e.to_string()))?;
        verify_signature(
            &key,
            stats_digest(&body.pubkey, body.timestamp),
            &body.signature,
        )
        .map_err(|e| ApiError::bad_request("invalid_signature", e.to_string()))?;
        let stats = openpleb_common::db::disputes::stats(&state.ctx.pool, &body.pubkey).await?;
        Ok(Json(stats.into()))
    }

    /// One evidence image (maker and taker)
    #[oai(
        path = "/offers/:id/dispute/evidence/:evidence_id",
        method = "get",
        operation_id = "getEvidence"
    )]
    async fn evidence(
        &self,
        auth: SessionAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        evidence_id: Path<Uuid>,
    ) -> ApiResult<EvidenceImage> {
        let reader = Reader::Session(auth.0.id);
        let (content_type, image) =
            dispute::evidence_image(&state.ctx, reader, *id, *evidence_id).await?;
        Ok(EvidenceImage::Ok(super::offers::ImageBody::new(
            &content_type,
            image,
        )))
    }
}
