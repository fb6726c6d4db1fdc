//! The solver's tools on the admin listener: disputes (the queue, one dispute's whole file, the
//! resolution), every offer, every user with its dispute statistics, and the record of what
//! admins did.

use chrono::{DateTime, Utc};
use openpleb_common::db::disputes::{self, ListFilter};
use openpleb_common::db::{admin_actions, offers, users};
use openpleb_common::domain::dispute::{DisputeStage, Resolution};
use openpleb_common::domain::offer::OfferStatus;
use openpleb_common::trade::dispute::{self, Reader};
use openpleb_common::trade::{resolve, Viewer};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Enum, Object, OpenApi};
use uuid::Uuid;

use super::dispute_views::{DisputeView, StatsView};
use super::disputes::EvidenceImage;
use super::offers::{view, OfferPage, OfferView};
use super::paging::{cursor_of, page, parse_cursor};
use super::{audit, ApiTags};
use crate::auth::AdminAuth;
use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// Which disputes to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum DisputeFilter {
    /// The taker has to forfeit or dispute.
    WaitingTaker,
    /// The maker has to forfeit or counter.
    WaitingMaker,
    /// An admin has to resolve it.
    WaitingAdmin,
    /// Settled.
    Resolved,
}

impl From<DisputeFilter> for DisputeStage {
    fn from(f: DisputeFilter) -> Self {
        match f {
            DisputeFilter::WaitingTaker => Self::WaitingTaker,
            DisputeFilter::WaitingMaker => Self::WaitingMaker,
            DisputeFilter::WaitingAdmin => Self::WaitingAdmin,
            DisputeFilter::Resolved => Self::Resolved,
        }
    }
}

/// An admin's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ResolutionChoice {
    /// The maker gets its deposit and the taker's bond.
    MakerWins,
    /// The taker gets the escrow, its reward, its bond and the maker's bond.
    TakerWins,
    /// Nobody at fault: each gets its own back.
    Return,
    /// The pot is halved; the odd sat goes to the taker.
    Split,
    /// The maker's payment details did not work (a dispute about the payment details only):
    /// the taker gets its bond and the maker's; the maker the rest of its deposit.
    BadDetails,
}

impl From<ResolutionChoice> for Resolution {
    fn from(r: ResolutionChoice) -> Self {
        match r {
            ResolutionChoice::MakerWins => Self::MakerWins,
            ResolutionChoice::TakerWins => Self::TakerWins,
            ResolutionChoice::Return => Self::Return,
            ResolutionChoice::Split => Self::Split,
            ResolutionChoice::BadDetails => Self::BadDetails,
        }
    }
}

/// Resolve a dispute.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ResolveBody {
    // The decision.
    pub resolution: ResolutionChoice,
    /// Why (shown to both parties; at most 2,000 characters).
    #[oai(validator(min_length = "1", max_length = "2000"))]
    pub note: String,
}

/// A dispute in the queue.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct DisputeSummary {
    /// The offer.
    pub offer_id: Uuid,
    /// Whose move it waits for.
    pub stage: String,
    /// Why the maker marked the issue.
    pub reason: String,
    /// Opened.
    pub opened_at: DateTime<Utc>,
    /// How it ended, once resolved.
    pub resolution: Option<String>,
}

/// A page of disputes.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct DisputePage {
    /// Oldest first.
    pub items: Vec<DisputeSummary>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// One status change of an offer.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct TimelineEntry {
    /// The status entered.
    pub status: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// A revealed key with its statistics.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct RevealedKey {
    /// The registered key.
    pub pubkey: String,
    // Its dispute statistics.
    pub stats: StatsView,
}

/// Everything about one dispute.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct AdminDisputeView {
    // The offer, all fields.
    pub offer: OfferView,
    // The dispute, its messages and evidence.
    pub dispute: DisputeView,
    // The maker's revealed key.
    pub maker: Option<RevealedKey>,
    // The taker's revealed key, once it disputed.
    pub taker: Option<RevealedKey>,
    /// Every status the offer entered, oldest first.
    pub timeline: Vec<TimelineEntry>,
}

/// A registered user, for admins.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct AdminUserView {
    /// Id.
    pub id: Uuid,
    /// Registered key.
    pub pubkey: String,
    /// `active` or `inactive`.
    pub status: String,
    /// Registered.
    pub created_at: DateTime<Utc>,
    // Dispute statistics.
    pub stats: StatsView,
}

/// A page of users.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct UserPage {
    /// Oldest first.
    pub items: Vec<AdminUserView>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// One admin action.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct AdminActionView {
    /// Sequence number (pass as `before` for older ones).
    pub id: i64,
    /// The admin.
    pub admin: String,
    /// What was done.
    pub action: String,
    /// On what.
    pub target: String,
    /// Why.
    pub note: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

fn default_limit() -> i64 {
    50
}

/// Admin dispute, offer, user and action endpoints.
#[derive(Debug)]
pub struct AdminDisputesApi;

#[OpenApi(tag = "ApiTags::Admin")]
impl AdminDisputesApi {
    /// Disputes, oldest first
    #[oai(
        path = "/admin/disputes",
        method = "get",
        operation_id = "adminListDisputes"
    )]
    async fn list(
        &self,
        _auth: AdminAuth,
        state: Data<&AppState>,
        /// Only disputes waiting for this move, or resolved ones.
        stage: Query<Option<DisputeFilter>>,
        /// Page size (1-100, default 50).
        #[oai(
            default = "default_limit",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        limit: Query<i64>,
        /// From a previous page's `nextCursor`.
        #[oai(validator(pattern = "^[0-9]{1,16}_[0-9a-f]{32}$"))]
        cursor: Query<Option<String>>,
    ) -> ApiResult<Json<DisputePage>> {
        let filter = ListFilter {
            stage: stage.0.map(Into::into),
            after: cursor.0.as_deref().map(parse_cursor).transpose()?,
            limit: *limit + 1,
        };
        let rows = disputes::list(&state.ctx.pool, &filter).await?;
        let (rows, next_cursor) = page(rows, *limit, |d| cursor_of(d.opened_at, d.offer_id));
        let items = rows
            .into_iter()
            .map(|d| DisputeSummary {
                offer_id: d.offer_id,
                stage: d.stage.as_str().to_owned(),
                reason: d.reason.as_str().to_owned(),
                opened_at: d.opened_at,
                resolution: d.resolution.map(|r| r.as_str().to_owned()),
            })
            .collect();
        Ok(Json(DisputePage { items, next_cursor }))
    }

    /// One dispute: offer, timeline, messages, evidence, revealed keys and their statistics
    ///
    /// The receipt is at `GET /admin/offers/{id}/receipt`, each evidence image at
    /// `GET /admin/disputes/{id}/evidence/{evidenceId}`. Reading a dispute's file, like its
    /// receipt and evidence, is recorded in the admin action log (`view_dispute`).
    #[oai(
        path = "/admin/disputes/:id",
        method = "get",
        operation_id = "adminGetDispute"
    )]
    async fn get(
        &self,
        auth: AdminAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> ApiResult<Json<AdminDisputeView>> {
        let file = dispute::file(&state.ctx, Reader::Admin, *id).await?;
        audit(&state, &auth.0, "view_dispute", file.offer.id, None).await?;
        let pool = &state.ctx.pool;
        let d = &file.dispute;
        let maker = match &d.maker_pubkey {
            Some(k) => Some(RevealedKey {
                stats: disputes::stats(pool, k).await?.into(),
                pubkey: k.clone(),
            }),
            None => None,
        };
        let taker = match &d.taker_pubkey {
            Some(k) => Some(RevealedKey {
                stats: disputes::stats(pool, k).await?.into(),
                pubkey: k.clone(),
            }),
            None => None,
        };
        let timeline = offers::events(pool, file.offer.id)
            .await?
            .into_iter()
            .map(|(status, at)| TimelineEntry {
                status: status.as_str().to_owned(),
                at,
            })
            .collect();
        Ok(Json(AdminDisputeView {
            offer: view(&file.offer, Viewer::Admin),
            dispute: DisputeView::from(&file),
            maker,
            taker,
            timeline,
        }))
    }

    /// One evidence image of a dispute
    ///
    /// Recorded in the admin action log (`view_evidence`, the image's id as the note).
    #[oai(
        path = "/admin/disputes/:id/evidence/:evidence_id",
        method = "get",
        operation_id = "adminGetEvidence"
    )]
    async fn evidence(
        &self,
        auth: AdminAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        evidence_id: Path<Uuid>,
    ) -> ApiResult<EvidenceImage> {
        let (content_type, image) =
            dispute::evidence_image(&state.ctx, Reader::Admin, *id, *evidence_id).await?;
        let note = evidence_id.to_string();
        audit(&state, &auth.0, "view_evidence", *id, Some(&note)).await?;
        Ok(EvidenceImage::Ok(super::offers::ImageBody::new(
            &content_type,
            image,
        )))
    }

    /// Resolve a dispute
    ///
    /// In DISPUTED or DETAILS_DISPUTED (waiting for the maker or for an admin). A dispute about
    /// the receipt takes MAKER_WINS, TAKER_WINS, RETURN or SPLIT; one about the payment details
    /// (no fiat moved) takes MAKER_WINS, RETURN or BAD_DETAILS; another choice is 400
    /// `resolution_not_allowed`. Final: a second resolution is refused with 409. The payouts
    /// follow the money table, locked to the revealed keys.
    #[oai(
        path = "/admin/disputes/:id/resolve",
        method = "post",
        operation_id = "adminResolveDispute"
    )]
    async fn resolve(
        &self,
        auth: AdminAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        body: Json<ResolveBody>,
    ) -> ApiResult<Json<OfferView>> {
        let b = body.0;
        let offer =
            resolve::resolve(&state.ctx, &auth.0, *id, b.resolution.into(), &b.note).await?;
        Ok(Json(view(&offer, Viewer::Admin)))
    }

    /// Every offer, newest first
    ///
    /// Without payment details: `GET /admin/offers/{id}` shows them (and records the read).
    #[oai(
        path = "/admin/offers",
        method = "get",
        operation_id = "adminListOffers"
    )]
    async fn offers(
        &self,
        _auth: AdminAuth,
        state: Data<&AppState>,
        /// Only this status (e.g. `DISPUTED`).
        #[oai(validator(
            pattern = "^(CREATED|INVOICE_PAID|TAKER_BOND_PAID|RECEIPT_SUBMITTED|MARKED_WITH_ISSUE|DISPUTED|DETAILS_DISPUTED|COMPLETED|EXPIRED|RESOLVED|CANCELLED)$"
        ))]
        status: Query<Option<String>>,
        /// Page size (1-100, default 50).
        #[oai(
            default = "default_limit",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        limit: Query<i64>,
        /// From a previous page's `nextCursor`.
        #[oai(validator(pattern = "^[0-9]{1,16}_[0-9a-f]{32}$"))]
        cursor: Query<Option<String>>,
    ) -> ApiResult<Json<OfferPage>> {
        let status = status
            .0
            .as_deref()
            .map(str::parse::<OfferStatus>)
            .transpose()
            .map_err(|_| {
                ApiError::bad_request("invalid_status", "status is not an offer status")
            })?;
        let before = cursor.0.as_deref().map(parse_cursor).transpose()?;
        let rows = offers::list_all(&state.ctx.pool, status, before, *limit + 1).await?;
        let (rows, next_cursor) = page(rows, *limit, |o| cursor_of(o.created_at, o.id));
        // A listing shows no payment details: reading them is a recorded action of its own
        // (`GET /admin/offers/{id}`), not a side effect of paging through offers.
        let items = rows
            .iter()
            .map(|o| OfferView {
                payment_details: None,
                ..view(o, Viewer::Admin)
            })
            .collect();
        Ok(Json(OfferPage { items, next_cursor }))
    }

    /// Registered users with their dispute statistics, oldest first
    #[oai(path = "/admin/users", method = "get", operation_id = "adminListUsers")]
    async fn users(
        &self,
        _auth: AdminAuth,
        state: Data<&AppState>,
        /// Only `active` or `inactive` users.
        #[oai(validator(pattern = "^(active|inactive)$"))]
        status: Query<Option<String>>,
        /// Page size (1-100, default 50).
        #[oai(
            default = "default_limit",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        limit: Query<i64>,
        /// From a previous page's `nextCursor`.
        #[oai(validator(pattern = "^[0-9]{1,16}_[0-9a-f]{32}$"))]
        cursor: Query<Option<String>>,
    ) -> ApiResult<Json<UserPage>> {
        let pool = &state.ctx.pool;
        let after = cursor.0.as_deref().map(parse_cursor).transpose()?;
        let rows = users::list(pool, status.0.as_deref(), after, *limit + 1).await?;
        let (rows, next_cursor) = page(rows, *limit, |u| cursor_of(u.created_at, u.id));
        let mut items = Vec::with_capacity(rows.len());
        for u in rows {
            items.push(AdminUserView {
                stats: disputes::stats(pool, &u.pubkey).await?.into(),
                id: u.id,
                pubkey: u.pubkey,
                status: u.status,
                created_at: u.created_at,
            });
        }
        Ok(Json(UserPage { items, next_cursor }))
    }

    /// What admins did, newest first
    #[oai(
        path = "/admin/actions",
        method = "get",
        operation_id = "adminListActions"
    )]
    async fn actions(
        &self,
        _auth: AdminAuth,
        state: Data<&AppState>,
        /// Only actions older than this sequence number.
        before: Query<Option<i64>>,
        /// Page size (1-100, default 50).
        #[oai(
            default = "default_limit",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        limit: Query<i64>,
    ) -> ApiResult<Json<Vec<AdminActionView>>> {
        let rows = admin_actions::list(&state.ctx.pool, before.0, *limit).await?;
        Ok(Json(
            rows.into_iter()
                .map(|a| AdminActionView {
                    id: a.id,
                    admin: a.admin_name,
                    action: a.action,
                    target: a.target,
                    note: a.note,
                    at: a.created_at,
                })
                .collect(),
        ))
    }
}
