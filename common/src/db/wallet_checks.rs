//! Which live wallets the reconciliation job looks at next, and when each was last looked at.
//!
//! Live wallets are those of sessions whose wallet has not been removed, plus the platform's own
//! wallets. Each run takes the least recently checked ones, so every live wallet is reached in
//! turn however many there are.

use std::time::Duration;

use sqlx::PgPool;

use crate::wallet::WalletId;

/// Up to `limit` live wallets not checked within `min_age`, never-checked and oldest first.
/// (Session wallet ids and platform wallet ids never collide: `session_` is reserved.)
/// `platform` names the platform's own wallets, which are always live.
pub async fn due(
    pool: &PgPool,
    platform: &[WalletId],
    min_age: Duration,
    limit: i64,
) -> Result<Vec<WalletId>, sqlx::Error> {
    let min_age =
        chrono::Duration::from_std(min_age).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let platform: Vec<&str> = platform.iter().map(WalletId::as_str).collect();
    let ids: Vec<String> = sqlx::query_scalar(
        "select w.wallet_id
           from (select session_wallet_id(s.id) as wallet_id
                   from sessions s where s.wallet_removed_at is null
                 union all
                 select unnest($1::text[])) w
           left join wallet_checks c on c.wallet_id = w.wallet_id
          where c.checked_at is null or c.checked_at < now() - $2
          order by c.checked_at nulls first, w.wallet_id
          limit $3",
    )
    .bind(&platform)
    .bind(min_age)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    ids.iter()
        .map(|id| WalletId::parse(id).map_err(|e| sqlx::Error::Decode(Box::new(e))))
        .collect()
}

/// Records that `wallet` was checked now.
pub async fn mark_checked(pool: &PgPool, wallet: &WalletId) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into wallet_checks (wallet_id, checked_at) values ($1, now())
         on conflict (wallet_id) do update set checked_at = excluded.checked_at",
    )
    .bind(wallet.as_str())
    .execute(pool)
    .await?;
    Ok(())
}

/// Forgets a wallet that was deleted.
pub async fn forget(pool: &PgPool, wallet: &WalletId) -> Result<(), sqlx::Error> {
    sqlx::query("delete from wallet_checks where wallet_id = $1")
        .bind(wallet.as_str())
        .execute(pool)
        .await?;
    Ok(())
}
