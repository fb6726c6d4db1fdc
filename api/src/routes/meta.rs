//! Platform facts a client needs before it trades: fees, bonds, limits, timers, the mint.

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use openpleb_common::db::offers;
use openpleb_common::domain::offer::OfferStatus;

use super::ApiTags;
use crate::error::ApiResult;
use crate::AppState;

/// A fee or bond rule: `ceil(escrow × percentBps / 10000) + flatSats`.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct FeeRuleView {
    /// Proportional part in basis points (100 = 1 %).
    pub percent_bps: u32,
    /// Flat part in sats.
    pub flat_sats: u64,
}

/// State timers in seconds, each measured from the moment the offer entered the state.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct TimersView {
    /// CREATED: the deposit invoice's lifetime.
    pub created_secs: u64,
    /// INVOICE_PAID: default offer lifetime.
    pub invoice_paid_default_secs: u64,
    /// INVOICE_PAID: longest offer lifetime a maker may choose.
    pub invoice_paid_max_secs: u64,
    /// A claim: time to pay its bond (or until the offer's listing ends, if sooner). Named
    /// after the status a claim used to put its offer in.
    pub invoice_created_secs: u64,
    /// TAKER_BOND_PAID: time to pay fiat and upload the receipt.
    pub taker_bond_paid_secs: u64,
    /// RECEIPT_SUBMITTED: time for the maker to confirm or mark an issue.
    pub receipt_submitted_secs: u64,
    /// MARKED_WITH_ISSUE: time for the taker to forfeit or dispute.
    pub marked_with_issue_secs: u64,
    /// DISPUTED: time for the maker to forfeit or counter.
    pub disputed_secs: u64,
    /// DETAILS_DISPUTED: time for the maker to forfeit or counter the taker's report.
    pub details_disputed_secs: u64,
}

/// What the platform charges and allows.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct PlatformConfig {
    /// The Cashu mint all ecash comes from.
    pub mint_url: String,
    /// The mint unit (`sat`).
    pub unit: String,
    /// The fiat currency (ISO 4217).
    pub currency: String,
    /// Largest fiat amount of one offer, in minor units.
    pub max_fiat_amount_minor: u64,
    // Platform fee, paid by the maker on completion.
    pub platform_fee: FeeRuleView,
    // Taker reward, paid by the maker on completion.
    pub taker_reward: FeeRuleView,
    // Maker bond.
    pub maker_bond: FeeRuleView,
    // Taker bond.
    pub taker_bond: FeeRuleView,
    // Per-state timers.
    pub timers: TimersView,
    /// Lifetime of a BAT session, seconds.
    pub session_expiry_secs: u64,
}

/// Platform counts; nothing identifying.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct Stats {
    /// Offers in the book now.
    pub open_offers: i64,
    /// Offers in a trade now (claimed, not settled).
    pub active_trades: i64,
    /// Completed trades, ever.
    pub completed_trades: i64,
    /// Registered users.
    pub registered_users: i64,
}

fn fee(rule: &openpleb_common::domain::money::FeeRule) -> FeeRuleView {
    FeeRuleView {
        percent_bps: rule.bps,
        flat_sats: rule.flat_sats,
    }
}

/// Meta endpoints.
#[derive(Debug)]
pub struct MetaApi;

#[OpenApi(tag = "ApiTags::Meta")]
impl MetaApi {
    /// Platform configuration
    ///
    /// Fees, bonds, limits, currency, mint URL and timers: everything a client shows before
    /// a trade. Public.
    #[oai(path = "/config", method = "get", operation_id = "getConfig")]
    async fn config(&self, state: Data<&AppState>) -> ApiResult<Json<PlatformConfig>> {
        let c = &state.ctx.config;
        let t = &c.timers;
        Ok(Json(PlatformConfig {
            mint_url: c.mint.url.clone(),
            unit: c.mint.unit.clone(),
            currency: c.limits.fiat_currency.clone(),
            max_fiat_amount_minor: c.limits.max_fiat_amount_minor,
            platform_fee: fee(&c.fees.platform_fee),
            taker_reward: fee(&c.fees.taker_reward),
            maker_bond: fee(&c.fees.maker_bond),
            taker_bond: fee(&c.fees.taker_bond),
            timers: TimersView {
                created_secs: t.created.as_secs(),
                invoice_paid_default_secs: t.invoice_paid_default.as_secs(),
                invoice_paid_max_secs: t.invoice_paid_max.as_secs(),
                invoice_created_secs: t.invoice_created.as_secs(),
                taker_bond_paid_secs: t.taker_bond_paid.as_secs(),
                receipt_submitted_secs: t.receipt_submitted.as_secs(),
                marked_with_issue_secs: t.marked_with_issue.as_secs(),
                disputed_secs: t.disputed.as_secs(),
                details_disputed_secs: t.details_disputed.as_secs(),
            },
            session_expiry_secs: c.api.session_expiry.as_secs(),
        }))
    }

    /// Platform statistics
    ///
    /// Counts only: offers in the book, trades under way, completed trades, registered users.
    /// Counted at most once every `STATS_CACHE_MS` (10 s by default) per server; between
    /// counts the last one is served.
    #[oai(path = "/stats", method = "get", operation_id = "getStats")]
    async fn stats(&self, state: Data<&AppState>) -> ApiResult<Json<Stats>> {
        let pool = &state.ctx.pool;
        Ok(Json(state.stats.get(|| count_stats(pool)).await?))
    }
}

/// Counts what `/stats` shows.
async fn count_stats(pool: &sqlx::PgPool) -> Result<Stats, sqlx::Error> {
    let counts = offers::counts_by_status(pool).await?;
    let count = |wanted: &[OfferStatus]| -> i64 {
        counts
            .iter()
            .filter(|(s, _)| wanted.contains(s))
            .map(|(_, n)| n)
            .sum()
    };
    let users: i64 = sqlx::query_scalar("select count(*) from users")
        .fetch_one(pool)
        .await?;
    Ok(Stats {
        open_offers: count(&[OfferStatus::InvoicePaid]),
        active_trades: count(&[
            OfferStatus::TakerBondPaid,
            OfferStatus::ReceiptSubmitted,
            OfferStatus::MarkedWithIssue,
            OfferStatus::Disputed,
            OfferStatus::DetailsDisputed,
        ]),
        completed_trades: count(&[OfferStatus::Completed]),
        registered_users: users,
    })
}
