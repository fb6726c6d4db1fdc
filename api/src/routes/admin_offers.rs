//! Admin views of offers, the sat audit, and the alerts an operator watches.

use chrono::{DateTime, Utc};
use openpleb_common::db::{alerts, disputes, ledger};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use uuid::Uuid;

use openpleb_common::jobs::queries::dead_jobs;
use openpleb_common::trade::{self, Viewer};

use super::offers::{receipt_response, view, OfferView, ReceiptImage};
use super::{audit, ApiTags};
use crate::auth::AdminAuth;
use crate::error::ApiResult;
use crate::AppState;

/// One offer whose ledger does not balance.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
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
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct AuditReport {
    /// Settled offers checked.
    pub offers_checked: i64,
    /// True when every settled offer balances.
    pub balanced: bool,
    /// Offers whose sats in differ from sats out + platform fee + mint fees.
    pub imbalances: Vec<ImbalanceView>,
}

/// An offer stuck past its deadline.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct StuckOfferView {
    /// Offer.
    pub offer_id: Uuid,
    /// Its state.
    pub status: String,
    /// Its deadline.
    pub expires_at: DateTime<Utc>,
}

/// A payout owed and not moving.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct OverduePayoutView {
    /// Payout.
    pub payout_id: Uuid,
    /// Its offer.
    pub offer_id: Uuid,
    /// `maker`, `taker` or `platform`.
    pub party: String,
    /// `settlement`, `refund`, `late_refund` or `sweep`.
    pub purpose: String,
    /// `RECORDED` (not released) or `RELEASED` (a platform fee not swept into the treasury).
    pub state: String,
    /// Sats.
    pub amount_sats: i64,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
}

/// A mint quote whose wallet was gone when its watcher looked: nobody can mint it, so a
/// payment of it is stranded at the mint until an operator restores the wallet from its seed.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct OrphanedQuoteView {
    /// The mint's quote id.
    pub quote_id: String,
    /// The offer it was for, if any.
    pub offer_id: Option<Uuid>,
    /// Sats it asked for.
    pub amount_sats: i64,
    /// The mint's expiry.
    pub expires_at: DateTime<Utc>,
    /// When the watcher found the wallet gone and stopped.
    pub orphaned_at: DateTime<Utc>,
}

/// A platform token the treasury sweep found spent by someone else: the treasury key leaked,
/// or (for a token recorded before platform payouts were locked) the database was read.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct SpentElsewhereView {
    /// The platform payout.
    pub payout_id: Uuid,
    /// Its offer.
    pub offer_id: Uuid,
    /// The platform's share that is gone.
    pub amount_sats: i64,
    /// When the sweep found it spent.
    pub found_at: DateTime<Utc>,
}

/// Jobs of one queue that will not run again.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct DeadJobsView {
    /// Queue name.
    pub queue: String,
    /// Killed jobs, and failed jobs out of attempts.
    pub count: i64,
}

/// What needs an operator. `ok` is true when every list is empty and every count zero.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct AlertsReport {
    /// Nothing needs attention.
    pub ok: bool,
    /// Offers ten minutes or more past their deadline in a state that lapses on its own
    /// (oldest first, at most 100).
    pub stuck_offers: Vec<StuckOfferView>,
    /// Disputes waiting for an admin's resolution (`GET /admin/disputes?stage=waiting_admin`).
    pub disputes_waiting_for_admin: i64,
    /// Issues opened over the last 24 hours per trade settled (completed or resolved) in that
    /// time; above 0.1 is an alert (the source document's dispute-rate alert).
    pub dispute_rate_24h: f64,
    /// The dispute rate is above 10 %.
    pub dispute_rate_high: bool,
    /// Payouts ten minutes or more overdue (oldest first, at most 100).
    pub overdue_payouts: Vec<OverduePayoutView>,
    /// Jobs that gave up, per queue.
    pub dead_jobs: Vec<DeadJobsView>,
    /// When the reconciliation last checked a wallet against the mint.
    pub last_reconciled_at: Option<DateTime<Utc>>,
    /// Live session wallets not reconciled within three `RECONCILE_INTERVAL`s.
    pub wallets_not_reconciled: i64,
    /// Quotes whose wallet was gone when their watcher looked, in the last seven days (newest
    /// first, at most 100). Ask the mint whether each was paid.
    pub orphaned_quotes: Vec<OrphanedQuoteView>,
    /// Platform tokens the treasury sweep found spent by someone else, in the last 30 days
    /// (newest first, at most 100). Rotate the treasury key (`TREASURY_PUBKEY`).
    pub platform_tokens_spent_elsewhere: Vec<SpentElsewhereView>,
}

/// Above this share of disputes per settled trade (24 h), the alerts say so.
const DISPUTE_RATE_ALERT: f64 = 0.10;

/// Issues opened per trade settled; all issues when nothing settled (each one counts).
fn dispute_rate(opened: i64, settled: i64) -> f64 {
    if settled == 0 {
        return if opened == 0 { 0.0 } else { 1.0 };
    }
    // Counts are far below 2^52: the conversion is exact.
    opened as f64 / settled as f64
}

/// Admin offer endpoints.
#[derive(Debug)]
pub struct AdminOffersApi;

#[OpenApi(tag = "ApiTags::Admin")]
impl AdminOffersApi {
    /// Any offer, with all its fields
    ///
    /// Its payment details are personal data: the read is recorded in the admin action log
    /// (`view_offer`).
    #[oai(
        path = "/admin/offers/:id",
        method = "get",
        operation_id = "adminGetOffer"
    )]
    async fn get(
        &self,
        auth: AdminAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> ApiResult<Json<OfferView>> {
        let offer = trade::load(&state.ctx, *id).await?;
        audit(&state, &auth.0, "view_offer", offer.id, None).await?;
        Ok(Json(view(&offer, Viewer::Admin)))
    }

    /// An offer's payment receipt
    ///
    /// Recorded in the admin action log (`view_receipt`).
    #[oai(
        path = "/admin/offers/:id/receipt",
        method = "get",
        operation_id = "adminGetReceipt"
    )]
    async fn receipt(
        &self,
        auth: AdminAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> ApiResult<ReceiptImage> {
        let receipt = trade::receipt::get(&state.ctx, None, *id).await?;
        if receipt.is_some() {
            audit(&state, &auth.0, "view_receipt", *id, None).await?;
        }
        receipt_response(receipt)
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
        let imbalances = ledger::audit(&state.ctx.pool).await?;
        let checked = ledger::settled_count(&state.ctx.pool).await?;
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

    /// Alerts: what needs an operator
    ///
    /// Offers stuck past their deadline, disputes waiting for a resolution, payouts owed and
    /// not moving, jobs that gave up, how far the wallet reconciliation has reached, and mint
    /// quotes whose wallet was gone, platform tokens spent by someone other than the treasury. The
    /// workers act on the same conditions (and log them); this is for dashboards and paging.
    #[oai(path = "/admin/alerts", method = "get", operation_id = "adminAlerts")]
    async fn alerts(
        &self,
        _auth: AdminAuth,
        state: Data<&AppState>,
    ) -> ApiResult<Json<AlertsReport>> {
        let pool = &state.ctx.pool;
        let stuck = alerts::stuck_offers(pool, 100).await?;
        let waiting = disputes::waiting_for_admin(pool).await?;
        let (opened, settled) = disputes::rate_24h(pool).await?;
        let rate = dispute_rate(opened, settled);
        let overdue = alerts::overdue_payouts(pool, 100).await?;
        let dead = dead_jobs(pool).await?;
        let (last, behind) =
            alerts::reconciliation(pool, state.ctx.config.worker.reconcile_interval * 3).await?;
        let orphaned = alerts::orphaned_quotes(pool, 100).await?;
        let spent = alerts::spent_elsewhere(pool, 100).await?;
        let ok = spent.is_empty()
            && stuck.is_empty()
            && waiting == 0
            && rate <= DISPUTE_RATE_ALERT
            && overdue.is_empty()
            && dead.is_empty()
            && behind == 0
            && orphaned.is_empty();
        Ok(Json(AlertsReport {
            ok,
            stuck_offers: stuck
                .into_iter()
                .filter_map(|o| {
                    Some(StuckOfferView {
                        offer_id: o.id,
                        expires_at: o.expires_at?,
                        status: o.status.as_str().to_owned(),
                    })
                })
                .collect(),
            disputes_waiting_for_admin: waiting,
            dispute_rate_24h: rate,
            dispute_rate_high: rate > DISPUTE_RATE_ALERT,
            overdue_payouts: overdue
                .into_iter()
                .map(|p| OverduePayoutView {
                    payout_id: p.id,
                    offer_id: p.offer_id,
                    party: p.party.as_str().to_owned(),
                    purpose: p.purpose.as_str().to_owned(),
                    state: p.state.as_str().to_owned(),
                    amount_sats: p.amount_sats,
                    recorded_at: p.created_at,
                })
                .collect(),
            dead_jobs: dead
                .into_iter()
                .map(|(queue, count)| DeadJobsView { queue, count })
                .collect(),
            last_reconciled_at: last,
            wallets_not_reconciled: behind,
            orphaned_quotes: orphaned
                .into_iter()
                .map(|q| OrphanedQuoteView {
                    quote_id: q.quote_id,
                    offer_id: q.offer_id,
                    amount_sats: q.amount_sats,
                    expires_at: q.expires_at,
                    orphaned_at: q.orphaned_at,
                })
                .collect(),
            platform_tokens_spent_elsewhere: spent
                .into_iter()
                .map(|p| SpentElsewhereView {
                    payout_id: p.id,
                    offer_id: p.offer_id,
                    amount_sats: p.amount_sats,
                    found_at: p.spent_elsewhere_at,
                })
                .collect(),
        }))
    }
}
