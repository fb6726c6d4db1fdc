//! Where each party of an offer is told what happens: its Web Push subscriptions and webhooks
//! (`notify_targets`). A target belongs to a party of one offer (a claimant's to its claim);
//! setting the same endpoint again replaces it.

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::role::Role;

/// Whose target: a party of the offer, or a claimant (its claim) before its bond wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// The offer.
    pub offer_id: Uuid,
    /// The party.
    pub role: Role,
    /// The claim, for a claimant (role taker).
    pub claim_id: Option<Uuid>,
}

/// What a target is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A browser's push subscription.
    WebPush {
        /// The browser's P-256 key, base64url.
        p256dh: String,
        /// The browser's auth secret, base64url.
        auth: String,
    },
    /// A signed webhook.
    Webhook {
        /// The signing secret (`whsec_…`).
        secret: String,
    },
}

/// A stored target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Id.
    pub id: Uuid,
    /// Whose.
    pub owner: Owner,
    /// The push endpoint or the webhook URL.
    pub endpoint: String,
    /// Push or webhook, with its keys.
    pub kind: Kind,
}

type Row = (
    Uuid,
    Uuid,
    Role,
    Option<Uuid>,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn decode(r: Row) -> Result<Target, sqlx::Error> {
    let (id, offer_id, role, claim_id, kind, endpoint, p256dh, auth, secret) = r;
    let kind = match (kind.as_str(), p256dh, auth, secret) {
        ("webpush", Some(p256dh), Some(auth), _) => Kind::WebPush { p256dh, auth },
        ("webhook", _, _, Some(secret)) => Kind::Webhook { secret },
        _ => {
            return Err(sqlx::Error::Decode(
                format!("notify target {id}: kind {kind} without its keys").into(),
            ))
        }
    };
    Ok(Target {
        id,
        owner: Owner {
            offer_id,
            role,
            claim_id,
        },
        endpoint,
        kind,
    })
}

const COLUMNS: &str = "id, offer_id, role, claim_id, kind, endpoint, p256dh, auth, secret";

/// How many targets `owner` holds.
pub async fn count(conn: &mut PgConnection, owner: &Owner) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "select count(*) from notify_targets
          where offer_id = $1 and role = $2 and claim_id is not distinct from $3",
    )
    .bind(owner.offer_id)
    .bind(owner.role)
    .bind(owner.claim_id)
    .fetch_one(conn)
    .await
}

/// Stores a target for `owner`, replacing one with the same endpoint; its id. False as the
/// second value when it replaced one (it did not add to the count).
pub async fn put(
    conn: &mut PgConnection,
    owner: &Owner,
    endpoint: &str,
    kind: &Kind,
) -> Result<(Uuid, bool), sqlx::Error> {
    let (k, p256dh, auth, secret) = match kind {
        Kind::WebPush { p256dh, auth } => ("webpush", Some(p256dh), Some(auth), None),
        Kind::Webhook { secret } => ("webhook", None, None, Some(secret)),
    };
    sqlx::query_as(
        "insert into notify_targets (id, offer_id, role, claim_id, kind, endpoint, p256dh, auth,
                                     secret)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         on conflict (offer_id, role,
                      coalesce(claim_id, '00000000-0000-0000-0000-000000000000'), endpoint)
         do update set kind = excluded.kind, p256dh = excluded.p256dh, auth = excluded.auth,
                       secret = excluded.secret
         returning id, (xmax = 0)",
    )
    .bind(Uuid::new_v4())
    .bind(owner.offer_id)
    .bind(owner.role)
    .bind(owner.claim_id)
    .bind(k)
    .bind(endpoint)
    .bind(p256dh)
    .bind(auth)
    .bind(secret)
    .fetch_one(conn)
    .await
}

/// Removes `owner`'s targets of one kind (`webpush` or `webhook`); how many.
pub async fn remove(pool: &PgPool, owner: &Owner, kind: &'static str) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "delete from notify_targets
          where offer_id = $1 and role = $2 and claim_id is not distinct from $3 and kind = $4",
    )
    .bind(owner.offer_id)
    .bind(owner.role)
    .bind(owner.claim_id)
    .bind(kind)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// The targets of a party of an offer: the maker's, or the taker's (its own, and those it gave
/// with its winning claim).
pub async fn of_party(
    conn: &mut PgConnection,
    offer_id: Uuid,
    role: Role,
) -> Result<Vec<Target>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from notify_targets t
          where offer_id = $1 and role = $2
            and (claim_id is null
                 or claim_id in (select id from claims where offer_id = $1 and status = 'WON'))
          order by created_at"
    )))
    .bind(offer_id)
    .bind(role)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(decode).collect()
}

/// The targets given with one claim.
pub async fn of_claim(conn: &mut PgConnection, claim_id: Uuid) -> Result<Vec<Target>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from notify_targets where claim_id = $1 order by created_at"
    )))
    .bind(claim_id)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(decode).collect()
}

/// One target.
pub async fn get(pool: &PgPool, id: Uuid) -> Result<Option<Target>, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from notify_targets where id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    row.map(decode).transpose()
}

/// Deletes a target (its push service said it is gone).
pub async fn delete(pool: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("delete from notify_targets where id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes, at most `limit` at a time, the targets nothing will be sent to any more: those of
/// an offer that ended at least `after` ago with no payout left to release, and those of a
/// claim that did not win, once its bond invoice can no longer be paid and `after` has passed.
/// How many.
pub async fn forget_finished(
    pool: &PgPool,
    after: std::time::Duration,
    limit: i64,
) -> Result<u64, sqlx::Error> {
    let after = chrono::Duration::from_std(after).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let done = sqlx::query(
        "delete from notify_targets where id in (
           select t.id from notify_targets t
             join offers o on o.id = t.offer_id
             left join claims c on c.id = t.claim_id
            where (c.id is null or c.status = 'WON')
              and o.status in ('COMPLETED', 'EXPIRED', 'RESOLVED', 'CANCELLED')
              and o.state_entered_at < now() - $1
              and not exists (select 1 from payouts p
                               where p.offer_id = o.id and p.state = 'RECORDED')
           union all
           select t.id from notify_targets t
             join claims c on c.id = t.claim_id
            where c.status in ('LOST', 'LAPSED')
              and c.ended_at < now() - $1
              and coalesce(c.bond_invoice_expires_at, c.ended_at) < now() - $1
              and not exists (select 1 from payouts p
                               where p.offer_id = c.offer_id and p.ref = c.bond_quote_id
                                 and p.state = 'RECORDED')
           limit $2)",
    )
    .bind(after)
    .bind(limit)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
