//! The treasury on the admin listener: what it holds and collected, and withdrawals out of it.
//! The api opens no wallet: the balance is what the workers last stored, and a withdrawal is a
//! row the worker's job pays (`worker/src/jobs/withdraw_treasury.rs`).

use chrono::{DateTime, Utc};
use openpleb_common::db::treasury::{self, Withdrawal};
use openpleb_common::trade::withdraw::{self, WithdrawError, WithdrawTo};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use uuid::Uuid;

use super::ApiTags;
use crate::auth::AdminAuth;
use crate::error::{ApiError, ApiResult, ErrorResponse};
use crate::AppState;

/// Withdrawals listed in the treasury view.
const RECENT_WITHDRAWALS: i64 = 10;

/// One withdrawal out of the treasury.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct WithdrawalView {
    /// Id.
    pub id: Uuid,
    /// `token` or `invoice`.
    pub kind: String,
    /// `REQUESTED` (in flight), `SENT` (token made), `PAID` (invoice paid) or `FAILED`
    /// (nothing left the treasury; see `failure`).
    pub state: String,
    /// The admin who asked for it.
    pub requested_by: String,
    /// Token: the sats asked for (the mint's fee comes out of them). Invoice: its amount.
    pub amount_sats: i64,
    /// Token: the key it is locked to (x-only hex).
    pub pubkey: Option<String>,
    /// Token, once SENT: a Cashu token P2PK-locked to `pubkey`, worth `amountSats - feeSats`.
    pub token: Option<String>,
    /// Invoice: the bolt11 invoice.
    pub invoice: Option<String>,
    /// Invoice: the mint's melt quote, once made.
    pub quote_id: Option<String>,
    /// Invoice: the most the mint may charge for routing it.
    pub fee_reserve_sats: Option<i64>,
    /// What the mint charged: its input fee, and for an invoice the Lightning fee.
    pub fee_sats: i64,
    /// Invoice, once PAID: the payment's preimage (when the mint gave one).
    pub preimage: Option<String>,
    /// Why it FAILED.
    pub failure: Option<String>,
    /// Asked for.
    pub created_at: DateTime<Utc>,
    /// Ended.
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<Withdrawal> for WithdrawalView {
    fn from(w: Withdrawal) -> Self {
        Self {
            id: w.id,
            kind: w.kind,
            state: w.state,
            requested_by: w.admin_name,
            amount_sats: w.amount_sats,
            pubkey: w.lock_pubkey,
            token: w.token,
            invoice: w.invoice,
            quote_id: w.quote_id,
            fee_reserve_sats: w.fee_reserve_sats,
            fee_sats: w.fee_sats,
            preimage: w.preimage,
            failure: w.failure,
            created_at: w.created_at,
            finished_at: w.finished_at,
        }
    }
}

/// The one-time move of the legacy treasury wallet (seeded from `WALLET_MASTER_SECRET`) into
/// the treasury wallet (seeded from `TREASURY_SECRET`).
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct LegacySweepView {
    /// `PENDING` (not started), `SENDING` (under way) or `DONE`.
    pub state: String,
    /// Sats moved.
    pub moved_sats: i64,
    /// When it ended.
    pub done_at: Option<DateTime<Utc>>,
}

/// The treasury: the platform's fees, the operator's.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct TreasuryView {
    /// Spendable sats in the treasury wallet, as a worker last read them (after each sweep,
    /// withdrawal and reconciliation).
    pub balance_sats: i64,
    /// When the balance was read; absent before the first read.
    pub balance_at: Option<DateTime<Utc>>,
    /// Platform fees swept into the treasury, in all.
    pub fees_collected_sats: i64,
    /// When the last platform fee was swept in.
    pub last_sweep_at: Option<DateTime<Utc>>,
    /// The legacy wallet's move.
    pub legacy_sweep: LegacySweepView,
    /// The withdrawal in flight, if any (a new one is refused until it ends).
    pub in_flight: Option<WithdrawalView>,
    /// The newest withdrawals, newest first (at most 10).
    pub recent_withdrawals: Vec<WithdrawalView>,
}

/// A token withdrawal: `amountSats` (the mint's fee comes out of them) locked to `pubkey`.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct TokenDestination {
    /// The key the token is P2PK-locked (NUT-11) to: 64 hex characters (x-only) or 66
    /// (compressed). Only its secret key redeems the token.
    #[oai(validator(min_length = "64", max_length = "66"))]
    pub pubkey: String,
    /// Sats to take out of the treasury.
    #[oai(validator(minimum(value = "1")))]
    pub amount_sats: u64,
}

/// A withdrawal request: exactly one of `token` and `invoice`.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct WithdrawBody {
    /// Withdraw as a Cashu token locked to a key you hold (stored, locked, in the
    /// withdrawal).
    pub token: Option<TokenDestination>,
    /// Withdraw by paying this bolt11 invoice (it must carry an amount); the mint's
    /// Lightning fee is paid on top, out of the treasury.
    #[oai(validator(min_length = "1", max_length = "4096"))]
    pub invoice: Option<String>,
}

#[derive(Debug, ApiResponse)]
enum Accepted {
    /// Recorded; a worker pays it. Follow it at `GET /admin/treasury/withdrawals/{id}`.
    #[oai(status = 202)]
    Ok(Json<WithdrawalView>),
}

impl From<WithdrawError> for ErrorResponse {
    fn from(e: WithdrawError) -> Self {
        let api = match e {
            WithdrawError::Invalid { code, message, .. } => ApiError::bad_request(code, message),
            WithdrawError::InProgress(_) => {
                ApiError::conflict("withdrawal_in_progress", e.to_string())
            }
            WithdrawError::OverBalance { .. } => {
                ApiError::bad_request("insufficient_treasury_balance", e.to_string())
            }
            WithdrawError::Database(db) => db.into(),
            WithdrawError::Enqueue(q) => ApiError::internal(q),
        };
        api.into()
    }
}

/// Admin treasury endpoints.
#[derive(Debug)]
pub struct AdminTreasuryApi;

#[OpenApi(tag = "ApiTags::Admin")]
impl AdminTreasuryApi {
    /// The treasury: balance, fees collected, last sweep, withdrawals
    #[oai(
        path = "/admin/treasury",
        method = "get",
        operation_id = "adminTreasury"
    )]
    async fn treasury(
        &self,
        _auth: AdminAuth,
        state: Data<&AppState>,
    ) -> ApiResult<Json<TreasuryView>> {
        let pool = &state.ctx.pool;
        let t = treasury::get(pool).await?;
        let recent = treasury::recent(pool, RECENT_WITHDRAWALS).await?;
        let in_flight = treasury::in_flight(pool).await?;
        Ok(Json(TreasuryView {
            balance_sats: t.balance_sats,
            balance_at: t.balance_at,
            fees_collected_sats: t.fees_collected_sats,
            last_sweep_at: t.last_sweep_at,
            legacy_sweep: LegacySweepView {
                state: t.legacy_state,
                moved_sats: t.legacy_sats,
                done_at: t.legacy_done_at,
            },
            in_flight: in_flight.map(Into::into),
            recent_withdrawals: recent.into_iter().map(Into::into).collect(),
        }))
    }

    /// Withdraw from the treasury
    ///
    /// Body: exactly one of `token` (a Cashu token of `amountSats`, less the mint's fee,
    /// P2PK-locked to `pubkey`) and `invoice` (a bolt11 invoice with an amount, paid by the
    /// mint; its Lightning fee comes on top). Recorded under your admin name and paid by a
    /// worker; answers 202 with the withdrawal. One at a time: 409 `withdrawal_in_progress`
    /// while another is REQUESTED. 400 `invalid_withdrawal` (neither or both given),
    /// `invalid_pubkey`, `invalid_amount`, `invalid_invoice`, `invoice_without_amount`,
    /// `invoice_expired`, and `insufficient_treasury_balance` (more than the balance last
    /// read; for an invoice the fee may still make it fail, then FAILED with nothing paid).
    #[oai(
        path = "/admin/treasury/withdraw",
        method = "post",
        operation_id = "adminTreasuryWithdraw"
    )]
    async fn withdraw(
        &self,
        auth: AdminAuth,
        state: Data<&AppState>,
        body: Json<WithdrawBody>,
    ) -> ApiResult<Accepted> {
        let to = match (&body.0.token, &body.0.invoice) {
            (Some(t), None) => WithdrawTo::Token {
                pubkey: &t.pubkey,
                sats: t.amount_sats,
            },
            (None, Some(invoice)) => WithdrawTo::Invoice(invoice),
            _ => {
                return Err(ApiError::bad_request(
                    "invalid_withdrawal",
                    "give exactly one of token and invoice",
                )
                .into())
            }
        };
        let row = withdraw::request(&state.ctx, &auth.0, to).await?;
        Ok(Accepted::Ok(Json(row.into())))
    }

    /// One treasury withdrawal
    #[oai(
        path = "/admin/treasury/withdrawals/:id",
        method = "get",
        operation_id = "adminTreasuryWithdrawal"
    )]
    async fn withdrawal(
        &self,
        _auth: AdminAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> ApiResult<Json<WithdrawalView>> {
        match treasury::get_withdrawal(&state.ctx.pool, *id).await? {
            Some(w) => Ok(Json(w.into())),
            None => Err(ApiError::not_found("withdrawal_not_found", "no such withdrawal").into()),
        }
    }
}
