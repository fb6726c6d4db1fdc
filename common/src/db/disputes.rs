//! Disputes: one row per offer that went through an issue (its stage, the revealed keys, how it
//! ended), the messages and evidence of each side, and dispute statistics per revealed key.
//! Stage changes are compare-and-set on the stage read.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::dispute::{
    Author, DisputeKind, DisputeStage, IssueReason, MessageKind, Resolution, ResolvedBy,
};
use crate::domain::role::Role;
use crate::keyring::data::Sealed;

/// A dispute row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Dispute {
    /// The offer.
    pub offer_id: Uuid,
    /// Whose move it waits for.
    pub stage: DisputeStage,
    /// What it is about: the receipt (raised by the maker) or the payment details (raised by
    /// the taker).
    pub kind: DisputeKind,
    /// Why it was raised.
    pub reason: IssueReason,
    /// The maker's revealed registered key (on a dispute about the payment details, once the
    /// maker countered).
    pub maker_pubkey: Option<String>,
    /// The taker's revealed registered key, once it disputed.
    pub taker_pubkey: Option<String>,
    /// The issue was marked.
    pub opened_at: DateTime<Utc>,
    /// The taker disputed.
    pub disputed_at: Option<DateTime<Utc>>,
    /// The maker countered (or stayed silent).
    pub countered_at: Option<DateTime<Utc>>,
    /// Settled.
    pub resolved_at: Option<DateTime<Utc>>,
    /// How it was settled.
    pub resolution: Option<Resolution>,
    /// What settled it.
    pub resolved_by: Option<ResolvedBy>,
}

const COLUMNS: &str = "offer_id, stage, kind, reason, maker_pubkey, taker_pubkey, opened_at, \
    disputed_at, countered_at, resolved_at, resolution, resolved_by";

/// Opens the dispute of an offer whose maker just marked an issue.
pub async fn open(
    conn: &mut PgConnection,
    offer_id: Uuid,
    reason: IssueReason,
    maker_pubkey: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into disputes (offer_id, stage, reason, maker_pubkey)
         values ($1, 'waiting_taker', $2, $3)",
    )
    .bind(offer_id)
    .bind(reason)
    .bind(maker_pubkey)
    .execute(conn)
    .await?;
    Ok(())
}

/// Opens the dispute of an offer whose taker just reported that the payment details do not
/// work: it waits for the maker, the taker's key revealed.
pub async fn open_details(
    conn: &mut PgConnection,
    offer_id: Uuid,
    taker_pubkey: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into disputes (offer_id, stage, kind, reason, taker_pubkey, disputed_at)
         values ($1, 'waiting_maker', 'payment_details', 'details_not_working', $2, now())",
    )
    .bind(offer_id)
    .bind(taker_pubkey)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records the maker's revealed key on a dispute that has none yet (a counter on the payment
/// details).
pub async fn reveal_maker(
    conn: &mut PgConnection,
    offer_id: Uuid,
    maker_pubkey: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update disputes set maker_pubkey = $2 where offer_id = $1 and maker_pubkey is null",
    )
    .bind(offer_id)
    .bind(maker_pubkey)
    .execute(conn)
    .await?;
    Ok(())
}

/// The dispute of an offer, if it has one.
pub async fn get(conn: &mut PgConnection, offer_id: Uuid) -> Result<Option<Dispute>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from disputes where offer_id = $1"
    )))
    .bind(offer_id)
    .fetch_optional(conn)
    .await
}

/// The taker disputes: WAITING_TAKER → WAITING_MAKER with its revealed key. False when the
/// dispute was not waiting for the taker.
pub async fn set_disputed(
    conn: &mut PgConnection,
    offer_id: Uuid,
    taker_pubkey: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update disputes set stage = 'waiting_maker', taker_pubkey = $2, disputed_at = now()
          where offer_id = $1 and stage = 'waiting_taker'",
    )
    .bind(offer_id)
    .bind(taker_pubkey)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The maker counters (or its silence counts as one): WAITING_MAKER → WAITING_ADMIN.
pub async fn set_countered(conn: &mut PgConnection, offer_id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update disputes set stage = 'waiting_admin', countered_at = now()
          where offer_id = $1 and stage = 'waiting_maker'",
    )
    .bind(offer_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Settles the dispute if it is in one of `from`. False when it was not.
pub async fn resolve(
    conn: &mut PgConnection,
    offer_id: Uuid,
    from: &[DisputeStage],
    resolution: Resolution,
    by: ResolvedBy,
) -> Result<bool, sqlx::Error> {
    let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
    let done = sqlx::query(
        "update disputes set stage = 'resolved', resolution = $3, resolved_by = $4,
                resolved_at = now()
          where offer_id = $1 and stage = any($2)",
    )
    .bind(offer_id)
    .bind(&from)
    .bind(resolution)
    .bind(by)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A message of a dispute.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Message {
    /// Who wrote it.
    pub author: Author,
    /// Which move it came with.
    pub kind: MessageKind,
    /// The text in plaintext: as stored before trade data was sealed, or once the dispute's
    /// file opened `body_sealed`; `None` otherwise and once deleted by retention.
    pub body: Option<String>,
    /// The text, sealed under `key_id`.
    pub body_sealed: Option<Vec<u8>>,
    /// The `DATA_SECRETS` id it is sealed under (0: plaintext).
    pub key_id: i16,
    /// When.
    pub created_at: DateTime<Utc>,
    /// When retention deleted the text.
    pub deleted_at: Option<DateTime<Utc>>,
}

/// Adds a message.
pub async fn add_message(
    conn: &mut PgConnection,
    offer_id: Uuid,
    author: Author,
    kind: MessageKind,
    body: &Sealed,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into dispute_messages (offer_id, author, kind, body_sealed, key_id)
         values ($1, $2, $3, $4, $5)",
    )
    .bind(offer_id)
    .bind(author)
    .bind(kind)
    .bind(&body.bytes)
    .bind(body.key_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The messages of a dispute, oldest first.
pub async fn messages(pool: &PgPool, offer_id: Uuid) -> Result<Vec<Message>, sqlx::Error> {
    sqlx::query_as(
        "select author, kind, body, body_sealed, key_id, created_at, deleted_at from dispute_messages
          where offer_id = $1 order by id",
    )
    .bind(offer_id)
    .fetch_all(pool)
    .await
}

/// An evidence image's metadata.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Evidence {
    /// Id.
    pub id: Uuid,
    /// Which side added it.
    pub author: Role,
    /// MIME type.
    pub content_type: String,
    /// Bytes (0 once deleted).
    pub size: i32,
    /// When.
    pub created_at: DateTime<Utc>,
    /// When retention deleted the image.
    pub deleted_at: Option<DateTime<Utc>>,
}

/// How many images `author` added to the dispute.
pub async fn evidence_count(
    conn: &mut PgConnection,
    offer_id: Uuid,
    author: Role,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("select count(*) from dispute_evidence where offer_id = $1 and author = $2")
        .bind(offer_id)
        .bind(author)
        .fetch_one(conn)
        .await
}

/// Adds an evidence image; its id.
pub async fn add_evidence(
    conn: &mut PgConnection,
    offer_id: Uuid,
    author: Role,
    content_type: &str,
    image: &Sealed,
) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::new_v4();
    sqlx::query(
        "insert into dispute_evidence (id, offer_id, author, content_type, image, key_id)
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(offer_id)
    .bind(author)
    .bind(content_type)
    .bind(&image.bytes)
    .bind(image.key_id)
    .execute(conn)
    .await?;
    Ok(id)
}

/// The evidence of a dispute (metadata only), oldest first.
pub async fn evidence(pool: &PgPool, offer_id: Uuid) -> Result<Vec<Evidence>, sqlx::Error> {
    // The size is the image's: the sealed bytes less the seal's 29 (version, nonce, tag).
    sqlx::query_as(
        "select id, author, content_type,
                coalesce(octet_length(image) - case when key_id > 0 then 29 else 0 end, 0) as size,
                created_at, deleted_at
           from dispute_evidence where offer_id = $1 order by created_at, id",
    )
    .bind(offer_id)
    .fetch_all(pool)
    .await
}

/// One evidence image: its type, its bytes as stored (`None` once deleted by retention) and
/// the key id they are sealed under.
pub async fn evidence_image(
    pool: &PgPool,
    offer_id: Uuid,
    id: Uuid,
) -> Result<Option<(String, Option<Vec<u8>>, i16)>, sqlx::Error> {
    sqlx::query_as(
        "select content_type, image, key_id from dispute_evidence
          where offer_id = $1 and id = $2",
    )
    .bind(offer_id)
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Dispute statistics of one revealed key, as maker and as taker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, sqlx::FromRow)]
pub struct Stats {
    /// Issues it raised as a maker.
    pub issues_raised: i64,
    /// Of those, settled in its favour.
    pub won_as_maker: i64,
    /// Of those, settled against it by an admin (or a taker's win it did not give up).
    pub lost_as_maker: i64,
    /// Of those, given up by forfeiting the dispute.
    pub forfeited_as_maker: i64,
    /// Disputes it opened as a taker.
    pub disputes_opened: i64,
    /// Of those, settled in its favour.
    pub won_as_taker: i64,
    /// Of those, settled against it.
    pub lost_as_taker: i64,
}

/// The statistics of `pubkey`, counted from reveals only.
pub async fn stats(pool: &PgPool, pubkey: &str) -> Result<Stats, sqlx::Error> {
    sqlx::query_as(
        "select
            count(*) filter (where maker_pubkey = $1) as issues_raised,
            count(*) filter (where maker_pubkey = $1 and resolution = 'MAKER_WINS')
                as won_as_maker,
            count(*) filter (where maker_pubkey = $1 and resolution = 'TAKER_WINS'
                             and resolved_by <> 'maker_forfeit') as lost_as_maker,
            count(*) filter (where maker_pubkey = $1 and resolved_by = 'maker_forfeit')
                as forfeited_as_maker,
            count(*) filter (where taker_pubkey = $1) as disputes_opened,
            count(*) filter (where taker_pubkey = $1 and resolution = 'TAKER_WINS')
                as won_as_taker,
            count(*) filter (where taker_pubkey = $1 and resolution = 'MAKER_WINS')
                as lost_as_taker
           from disputes
          where maker_pubkey = $1 or taker_pubkey = $1",
    )
    .bind(pubkey)
    .fetch_one(pool)
    .await
}

/// Which disputes a listing wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListFilter {
    /// Only this stage (any when `None`).
    pub stage: Option<DisputeStage>,
    /// Keyset cursor: disputes opened after this (opened_at, offer id).
    pub after: Option<(DateTime<Utc>, Uuid)>,
    /// Page size.
    pub limit: i64,
}

/// Disputes, oldest first, keyset-paged.
pub async fn list(pool: &PgPool, f: &ListFilter) -> Result<Vec<Dispute>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from disputes
          where ($1::text is null or stage = $1)
            and ($2::timestamptz is null or (opened_at, offer_id) > ($2, $3))
          order by opened_at, offer_id
          limit $4"
    )))
    .bind(f.stage)
    .bind(f.after.map(|a| a.0))
    .bind(f.after.map(|a| a.1))
    .bind(f.limit)
    .fetch_all(pool)
    .await
}

/// Disputes waiting for an admin.
pub async fn waiting_for_admin(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("select count(*) from disputes where stage = 'waiting_admin'")
        .fetch_one(pool)
        .await
}

/// Over the last 24 hours: issues opened, and trades settled (completed or resolved).
pub async fn rate_24h(pool: &PgPool) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "select (select count(*) from disputes where opened_at > now() - interval '24 hours'),
                (select count(*) from offers
                  where status in ('COMPLETED', 'RESOLVED')
                    and state_entered_at > now() - interval '24 hours')",
    )
    .fetch_one(pool)
    .await
}
