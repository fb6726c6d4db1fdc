//! Offers and their compare-and-set transitions. Every state change is
//! `UPDATE .. WHERE id = $1 AND status = $expected` and returns the row if it won; the trade
//! step that moved it records the event and schedules the next lapse (`crate::trade`).

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::money::{OfferAmounts, Outcome};
use crate::domain::offer::OfferStatus;
use crate::domain::payout::FundedBy;
use crate::keyring::data::{Sealed, PLAINTEXT};

/// An offer row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Offer {
    /// Id.
    pub id: Uuid,
    /// Status.
    pub status: OfferStatus,
    /// The maker's session.
    pub maker_session_id: Uuid,
    /// The taker's session, once claimed.
    pub taker_session_id: Option<Uuid>,
    /// Fiat amount in minor units.
    pub fiat_amount_minor: i64,
    /// ISO 4217.
    pub fiat_currency: String,
    /// Provider.
    pub fiat_provider_id: Uuid,
    /// Where the taker pays (account, QR string), in plaintext: as stored before trade data
    /// was sealed, or once [`crate::trade::load`] opened `payment_details_sealed`; `None`
    /// otherwise and once deleted by retention.
    pub payment_details: Option<String>,
    /// The payment details sealed under `data_key_id` (see [`crate::keyring::data`]).
    pub payment_details_sealed: Option<Vec<u8>>,
    /// The `DATA_SECRETS` id the payment details are sealed under (0: plaintext).
    pub data_key_id: i16,
    /// When retention deleted the offer's trade data (payment details, receipt, evidence,
    /// dispute messages).
    pub trade_data_deleted_at: Option<DateTime<Utc>>,
    /// Free text.
    pub description: Option<String>,
    /// Frozen price, minor units per BTC.
    pub price_minor_per_btc: i64,
    /// S.
    pub amount_sats: i64,
    /// PF.
    pub platform_fee_sats: i64,
    /// TF.
    pub taker_reward_sats: i64,
    /// MB.
    pub maker_bond_sats: i64,
    /// TB.
    pub taker_bond_sats: i64,
    /// Maker's per-trade payout key.
    pub maker_payout_pubkey: String,
    /// Taker's per-trade payout key.
    pub taker_payout_pubkey: Option<String>,
    /// INVOICE_PAID lifetime chosen by the maker.
    pub lifetime_secs: i64,
    /// When the current status was entered.
    pub state_entered_at: DateTime<Utc>,
    /// Deadline of the current status.
    pub expires_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// The deposit's mint quote.
    pub deposit_quote_id: Option<String>,
    /// The current claim's bond quote.
    pub bond_quote_id: Option<String>,
    /// How the deposit arrived.
    pub funded_by: Option<FundedBy>,
    /// How the money table settled it.
    pub resolved_outcome: Option<Outcome>,
    /// End of the lifetime the maker chose (a lapsed claim returns the offer to the book until
    /// then).
    pub listed_until: Option<DateTime<Utc>>,
    /// Reputation tokens the maker staked.
    pub maker_stake: i32,
    /// Reputation tokens the current taker staked.
    pub taker_stake: i32,
    /// Reputation tokens a taker must stake to claim it.
    pub min_taker_stake: i32,
    /// Claims waiting for their bonds (listed offers; zero otherwise).
    pub pending_claims: i32,
}

impl Offer {
    /// The frozen amounts.
    pub fn amounts(&self) -> OfferAmounts {
        let u = |v: i64| u64::try_from(v).unwrap_or(0);
        OfferAmounts {
            escrow: u(self.amount_sats),
            platform_fee: u(self.platform_fee_sats),
            taker_reward: u(self.taker_reward_sats),
            maker_bond: u(self.maker_bond_sats),
            taker_bond: u(self.taker_bond_sats),
        }
    }
}

/// Everything a new offer needs.
#[derive(Debug, Clone)]
pub struct NewOffer {
    /// Id (chosen by the caller so the quote can name it).
    pub id: Uuid,
    /// Maker's session.
    pub maker_session_id: Uuid,
    /// Fiat amount, minor units.
    pub fiat_amount_minor: i64,
    /// ISO 4217.
    pub fiat_currency: String,
    /// Provider.
    pub fiat_provider_id: Uuid,
    /// Payment details, sealed (or plaintext under key id 0: fixtures).
    pub payment_details: Sealed,
    /// Description.
    pub description: Option<String>,
    /// Frozen price.
    pub price_minor_per_btc: i64,
    /// Frozen amounts.
    pub amounts: OfferAmounts,
    /// Maker payout key (hex).
    pub maker_payout_pubkey: String,
    /// INVOICE_PAID lifetime.
    pub lifetime_secs: i64,
    /// CREATED's timer: the deadline is this from now (database clock), or the quote's expiry
    /// if that comes first.
    pub timer: std::time::Duration,
    /// When the deposit invoice stops being payable.
    pub quote_expires_at: DateTime<Utc>,
    /// The deposit's mint quote (none for offers made by fixtures).
    pub deposit_quote_id: Option<String>,
    /// Reputation tokens a taker must stake to claim it.
    pub min_taker_stake: i32,
}

pub(crate) const COLUMNS: &str = "id, status, maker_session_id, taker_session_id, \
    fiat_amount_minor, fiat_currency, fiat_provider_id, payment_details, payment_details_sealed, \
    data_key_id, trade_data_deleted_at, \
    description, \
    price_minor_per_btc, amount_sats, platform_fee_sats, taker_reward_sats, maker_bond_sats, \
    taker_bond_sats, maker_payout_pubkey, taker_payout_pubkey, lifetime_secs, state_entered_at, \
    expires_at, created_at, deposit_quote_id, bond_quote_id, funded_by, resolved_outcome, \
    listed_until, maker_stake, taker_stake, min_taker_stake, \
    (select count(*)::int4 from claims c where c.offer_id = offers.id and c.status = 'PENDING' \
       and c.expires_at > now()) as pending_claims";

fn sats(v: u64) -> Result<i64, sqlx::Error> {
    i64::try_from(v).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

/// The channel live updates are announced on:
/// `<offer id>:<from status or ->:<to status>:<maker session>:<taker session or ->`. The
/// parties let each session's stream pick its own offers without reading the offer back; the
/// channel is heard by the api processes only, never by clients.
pub const EVENTS_CHANNEL: &str = "openpleb_offers";

/// Records that `offer` moved from `from` into its current status, for the live streams. The
/// `NOTIFY` is delivered on commit only, so listeners never see a change that was rolled back.
pub async fn record_event(
    conn: &mut PgConnection,
    offer: &Offer,
    from: Option<OfferStatus>,
) -> Result<(), sqlx::Error> {
    let (id, to) = (offer.id, offer.status);
    sqlx::query("insert into offer_events (offer_id, status) values ($1, $2)")
        .bind(id)
        .bind(to.as_str())
        .execute(&mut *conn)
        .await?;
    let from = from.map_or("-", OfferStatus::as_str);
    let maker = offer.maker_session_id;
    let taker = offer
        .taker_session_id
        .map_or_else(|| "-".to_owned(), |t| t.to_string());
    sqlx::query("select pg_notify($1, $2)")
        .bind(EVENTS_CHANNEL)
        .bind(format!("{id}:{from}:{}:{maker}:{taker}", to.as_str()))
        .execute(conn)
        .await?;
    Ok(())
}

/// Inserts a CREATED offer.
pub async fn insert(conn: &mut PgConnection, o: &NewOffer) -> Result<Offer, sqlx::Error> {
    let offer: Offer = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "insert into offers (id, status, maker_session_id, fiat_amount_minor, fiat_currency,
            fiat_provider_id, payment_details, description, price_minor_per_btc, amount_sats,
            platform_fee_sats, taker_reward_sats, maker_bond_sats, taker_bond_sats,
            maker_payout_pubkey, lifetime_secs, expires_at, deposit_quote_id, min_taker_stake,
            payment_details_sealed, data_key_id)
         values ($1, 'CREATED', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                 least(now() + $16, $19), $17, $18, $20, $21)
         returning {COLUMNS}"
    )))
    .bind(o.id)
    .bind(o.maker_session_id)
    .bind(o.fiat_amount_minor)
    .bind(&o.fiat_currency)
    .bind(o.fiat_provider_id)
    .bind(
        (o.payment_details.key_id == PLAINTEXT)
            .then(|| String::from_utf8_lossy(&o.payment_details.bytes).into_owned()),
    )
    .bind(&o.description)
    .bind(o.price_minor_per_btc)
    .bind(sats(o.amounts.escrow)?)
    .bind(sats(o.amounts.platform_fee)?)
    .bind(sats(o.amounts.taker_reward)?)
    .bind(sats(o.amounts.maker_bond)?)
    .bind(sats(o.amounts.taker_bond)?)
    .bind(&o.maker_payout_pubkey)
    .bind(o.lifetime_secs)
    .bind(interval(Some(o.timer))?)
    .bind(&o.deposit_quote_id)
    .bind(o.min_taker_stake)
    .bind(o.quote_expires_at)
    .bind((o.payment_details.key_id != PLAINTEXT).then_some(&o.payment_details.bytes))
    .bind(o.payment_details.key_id)
    .fetch_one(conn)
    .await?;
    Ok(offer)
}

/// One offer.
pub async fn get(pool: &PgPool, id: Uuid) -> Result<Option<Offer>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from offers where id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// One offer, locked for the rest of the transaction.
pub async fn get_for_update(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<Offer>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from offers where id = $1 for update"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Which deadline a compare-and-set respects, read from the database's clock in the same
/// statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    /// A party's move: only before the current state's deadline (a state without one has no
    /// bound). Silence decides at the deadline even while the lapse job is late.
    Before,
    /// A lapse: only once the deadline has passed.
    Passed,
    /// The platform's own moves (a payment applied, an admin's decision): no bound.
    Any,
}

impl Deadline {
    fn sql(self) -> &'static str {
        match self {
            Self::Before => "(expires_at is null or expires_at > now())",
            Self::Passed => "expires_at <= now()",
            Self::Any => "true",
        }
    }
}

fn interval(d: Option<std::time::Duration>) -> Result<Option<chrono::Duration>, sqlx::Error> {
    d.map(chrono::Duration::from_std)
        .transpose()
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

/// Compare-and-set: moves `id` from `from` to `to` if `deadline` allows, entering `to` now with
/// a deadline `timer` from now (database clock; none without a timer). Entering INVOICE_PAID
/// from CREATED also fixes the end of the listing. Returns the updated offer if this call won.
pub async fn transition(
    conn: &mut PgConnection,
    id: Uuid,
    from: OfferStatus,
    to: OfferStatus,
    timer: Option<std::time::Duration>,
    deadline: Deadline,
) -> Result<Option<Offer>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "update offers set status = $3, state_entered_at = now(), expires_at = now() + $4,
                listed_until = case when $2 = 'CREATED' and $3 = 'INVOICE_PAID' then now() + $4
                                    else listed_until end,
                updated_at = now()
          where id = $1 and status = $2 and {}
         returning {COLUMNS}",
        deadline.sql()
    )))
    .bind(id)
    .bind(from)
    .bind(to)
    .bind(interval(timer)?)
    .fetch_optional(conn)
    .await
}

/// Why a party's compare-and-set from `from` did not win: `Some(true)` when the offer is still
/// in `from` but its deadline has passed, `Some(false)` when it moved on, `None` when there is
/// no such offer.
pub async fn missed_deadline(
    conn: &mut PgConnection,
    id: Uuid,
    from: OfferStatus,
) -> Result<Option<(OfferStatus, bool)>, sqlx::Error> {
    sqlx::query_as(
        "select status, status = $2 and expires_at is not null and expires_at <= now()
           from offers where id = $1",
    )
    .bind(id)
    .bind(from)
    .fetch_optional(conn)
    .await
}

/// Locks `id` for the rest of the transaction if it is listed and inside its listing deadline
/// (database clock): claims of one offer are counted one at a time. False otherwise.
pub async fn lock_listed(conn: &mut PgConnection, id: Uuid) -> Result<bool, sqlx::Error> {
    let row: Option<i32> = sqlx::query_scalar(
        "select 1 from offers
          where id = $1 and status = 'INVOICE_PAID' and expires_at > now()
          for update",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(row.is_some())
}

/// The winning bond: INVOICE_PAID → TAKER_BOND_PAID with the claim's taker, its payout key,
/// bond and stake, the receipt's deadline `timer` from now (database clock). The row if this
/// call won (the offer was still listed).
pub async fn take(
    conn: &mut PgConnection,
    id: Uuid,
    claim: &crate::db::claims::Claim,
    timer: std::time::Duration,
) -> Result<Option<Offer>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "update offers set status = 'TAKER_BOND_PAID', taker_session_id = $2,
                taker_payout_pubkey = $3, bond_quote_id = $4, taker_stake = $5,
                claimed_at = $6, state_entered_at = now(), expires_at = now() + $7,
                updated_at = now()
          where id = $1 and status = 'INVOICE_PAID' and maker_session_id <> $2
         returning {COLUMNS}"
    )))
    .bind(id)
    .bind(claim.session_id)
    .bind(&claim.payout_pubkey)
    .bind(&claim.bond_quote_id)
    .bind(claim.stake)
    .bind(claim.created_at)
    .bind(interval(Some(timer))?)
    .fetch_optional(conn)
    .await
}

/// Offers past their deadline by more than `by`, in a state that lapses on its own, most
/// overdue first: the cron's backstop lapses them (`by` zero), the alerts report them as stuck.
pub async fn overdue(
    pool: &PgPool,
    by: std::time::Duration,
    limit: i64,
) -> Result<Vec<Offer>, sqlx::Error> {
    let by = chrono::Duration::from_std(by).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from offers
          where expires_at < now() - $1
            and status not in ('COMPLETED', 'EXPIRED', 'RESOLVED', 'CANCELLED')
          order by expires_at limit $2"
    )))
    .bind(by)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Marks how the money table settles an offer.
pub async fn set_outcome(
    conn: &mut PgConnection,
    id: Uuid,
    outcome: Outcome,
) -> Result<(), sqlx::Error> {
    sqlx::query("update offers set resolved_outcome = $2 where id = $1")
        .bind(id)
        .bind(outcome)
        .execute(conn)
        .await?;
    Ok(())
}

/// Sets how the deposit arrived.
pub async fn set_funded_by(
    conn: &mut PgConnection,
    id: Uuid,
    how: FundedBy,
) -> Result<(), sqlx::Error> {
    sqlx::query("update offers set funded_by = $2 where id = $1")
        .bind(id)
        .bind(how)
        .execute(conn)
        .await?;
    Ok(())
}

/// Filters of the public book.
#[derive(Debug, Clone, Default)]
pub struct BookFilter {
    /// Only this currency.
    pub currency: Option<String>,
    /// Only this provider.
    pub provider: Option<Uuid>,
    /// Fiat amount at least (minor units).
    pub min_fiat_minor: Option<i64>,
    /// Fiat amount at most (minor units).
    pub max_fiat_minor: Option<i64>,
    /// Maker stake at least.
    pub min_maker_stake: Option<i32>,
    /// Also the offers of this session, whatever their status.
    pub own_session: Option<Uuid>,
    /// Keyset cursor: offers created before this (created_at, id).
    pub before: Option<(DateTime<Utc>, Uuid)>,
    /// Page size.
    pub limit: i64,
}

/// The book: public offers (plus the caller's own), newest first, keyset-paged.
pub async fn list(pool: &PgPool, f: &BookFilter) -> Result<Vec<Offer>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from offers
          where (status = 'INVOICE_PAID'
                 or ($5::uuid is not null
                     and (maker_session_id = $5 or taker_session_id = $5)))
            and ($1::text is null or fiat_currency = $1)
            and ($2::uuid is null or fiat_provider_id = $2)
            and ($3::bigint is null or fiat_amount_minor >= $3)
            and ($4::bigint is null or fiat_amount_minor <= $4)
            and ($6::timestamptz is null or (created_at, id) < ($6, $7))
            and ($9::integer is null or maker_stake >= $9)
          order by created_at desc, id desc
          limit $8"
    )))
    .bind(&f.currency)
    .bind(f.provider)
    .bind(f.min_fiat_minor)
    .bind(f.max_fiat_minor)
    .bind(f.own_session)
    .bind(f.before.map(|b| b.0))
    .bind(f.before.map(|b| b.1))
    .bind(f.limit)
    .bind(f.min_maker_stake)
    .fetch_all(pool)
    .await
}

/// Counts by status, for `/stats`.
pub async fn counts_by_status(pool: &PgPool) -> Result<Vec<(OfferStatus, i64)>, sqlx::Error> {
    sqlx::query_as("select status, count(*) from offers group by status order by status")
        .fetch_all(pool)
        .await
}

/// Every offer (admins), optionally of one status, newest first, keyset-paged.
pub async fn list_all(
    pool: &PgPool,
    status: Option<OfferStatus>,
    before: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<Offer>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from offers
          where ($1::text is null or status = $1)
            and ($2::timestamptz is null or (created_at, id) < ($2, $3))
          order by created_at desc, id desc
          limit $4"
    )))
    .bind(status)
    .bind(before.map(|b| b.0))
    .bind(before.map(|b| b.1))
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Every status an offer entered, oldest first.
pub async fn events(
    pool: &PgPool,
    id: Uuid,
) -> Result<Vec<(OfferStatus, DateTime<Utc>)>, sqlx::Error> {
    sqlx::query_as("select status, created_at from offer_events where offer_id = $1 order by id")
        .bind(id)
        .fetch_all(pool)
        .await
}
