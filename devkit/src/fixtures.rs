//! Rows and funds tests and benchmarks start from: a session, an offer, a funded wallet, a raw
//! cdk wallet over a session's file. Everything goes through the real database and mint.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use cdk::nuts::CurrencyUnit;
use cdk::wallet::{Wallet, WalletBuilder};
use chrono::Utc;
use openpleb_common::db::offers::{self, NewOffer, Offer};
use openpleb_common::domain::money::{FeeRule, FeeRules, OfferAmounts};
use openpleb_common::domain::offer::OfferStatus;
use openpleb_common::wallet::store::{OpenConnections, SqlxSqliteConfig, WalletSqlxDatabase};
use openpleb_common::wallet::{MintOutcome, WalletId, WalletManager, WalletManagerConfig};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::DevMint;

/// 1 % plus 10 sats for every fee and bond.
pub fn fee_rules() -> FeeRules {
    let rule = FeeRule {
        bps: 100,
        flat_sats: 10,
    };
    FeeRules {
        platform_fee: rule,
        taker_reward: rule,
        maker_bond: rule,
        taker_bond: rule,
    }
}

/// A session (and the BAT redemption it needs) that expires in an hour.
pub async fn insert_session(conn: &mut PgConnection) -> anyhow::Result<Uuid> {
    let session = Uuid::new_v4();
    let mut bat = [0u8; 32];
    bat[..16].copy_from_slice(session.as_bytes());
    bat[16..].copy_from_slice(Uuid::new_v4().as_bytes());
    sqlx::query("insert into bat_redemptions (bat_hash, spent_at) values ($1, now())")
        .bind(bat.as_slice())
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "insert into sessions (id, bat_hash, expires_at) values ($1, $2, now() + interval '1 hour')",
    )
    .bind(session)
    .bind(bat.as_slice())
    .execute(&mut *conn)
    .await?;
    Ok(session)
}

/// A CREATED offer of `sats` by `session`, paid out to `payout_key` (x-only hex), with
/// [`fee_rules`]; creates a provider named `SEPA` on first use.
pub async fn insert_offer(
    conn: &mut PgConnection,
    session: Uuid,
    sats: u64,
    payout_key: &str,
) -> anyhow::Result<Offer> {
    let provider: Uuid = sqlx::query_scalar(
        "insert into fiat_providers (id, name, kind, active) values ($1, 'SEPA', 'bank_transfer', true)
         on conflict (name) do update set name = excluded.name returning id",
    )
    .bind(Uuid::new_v4())
    .fetch_one(&mut *conn)
    .await?;
    let offer = offers::insert(
        conn,
        &NewOffer {
            id: Uuid::new_v4(),
            maker_session_id: session,
            fiat_amount_minor: 300,
            fiat_currency: "EUR".into(),
            fiat_provider_id: provider,
            payment_details: openpleb_common::keyring::data::Sealed::plaintext("IBAN"),
            description: None,
            price_minor_per_btc: 6_000_000,
            amounts: OfferAmounts::new(sats, &fee_rules()).context("amounts")?,
            maker_payout_pubkey: payout_key.to_owned(),
            lifetime_secs: 3600,
            timer: Duration::from_secs(3600),
            quote_expires_at: Utc::now() + chrono::Duration::hours(1),
            deposit_quote_id: None,
            min_taker_stake: 0,
        },
    )
    .await?;
    Ok(offer)
}

/// An offer of `session`'s, as [`insert_offer`] makes it, that ended without a trade: moved
/// from CREATED to CANCELLED, nothing in the ledger backing its wallet's sats.
pub async fn cancelled_offer(
    conn: &mut PgConnection,
    session: Uuid,
    sats: u64,
    payout_key: &str,
) -> anyhow::Result<Offer> {
    let offer = insert_offer(&mut *conn, session, sats, payout_key).await?;
    let (from, to) = (OfferStatus::Created, OfferStatus::Cancelled);
    let moved = offers::transition(conn, offer.id, from, to, None, offers::Deadline::Any).await?;
    moved.context("the offer was not CREATED")
}

/// How many of `quotes` are not final in the platform's books (neither minted nor given up).
pub async fn open_quotes(pool: &PgPool, quotes: &[String]) -> anyhow::Result<i64> {
    let open = sqlx::query_scalar(
        "select count(*) from wallet_quotes
          where quote_id = any($1) and state not in ('ISSUED', 'EXPIRED')",
    )
    .bind(quotes)
    .fetch_one(pool)
    .await?;
    Ok(open)
}

/// A fresh key and its x-only public key, as payouts are locked to it.
pub fn fresh_key() -> (
    cdk::nuts::SecretKey,
    openpleb_common::domain::keys::XOnlyKey,
) {
    let sk = cdk::nuts::SecretKey::generate();
    let x = sk.public_key().x_only_public_key().to_string();
    match x.parse() {
        Ok(key) => (sk, key),
        Err(e) => panic!("x-only key: {e}"),
    }
}

/// Mints `sats` into `wallet` through a Lightning quote the mint is told is paid.
pub async fn fund_wallet(
    wallets: &WalletManager,
    mint: &DevMint,
    wallet: &WalletId,
    sats: u64,
) -> anyhow::Result<()> {
    let quote = wallets.create_mint_quote(wallet, sats).await?;
    mint.pay_invoice(&quote.request, sats).await?;
    for _ in 0..200 {
        if let MintOutcome::Issued(_) = wallets.mint_quote(wallet, &quote.quote_id).await? {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    anyhow::bail!("quote {} was never issued", quote.quote_id)
}

/// A cdk wallet over a session wallet's own file, bypassing the manager (no lease, no
/// recovery): for tests that interrupt an operation the way a crash would. Close the wallet
/// in every manager first; drop the returned wallet and wait for its connections to close
/// before a manager opens the file again.
pub async fn raw_wallet(
    cfg: &WalletManagerConfig,
    wallet: &WalletId,
) -> anyhow::Result<(Wallet, Arc<OpenConnections>)> {
    let config = SqlxSqliteConfig::file(cfg.layout.locate(wallet));
    let connections = config.open_connections();
    let db = Arc::new(WalletSqlxDatabase::new(config).await?);
    let w = WalletBuilder::new()
        .mint_url(cfg.mint_url.parse().context("mint url")?)
        .unit(CurrencyUnit::Sat)
        .localstore(db)
        .seed(cfg.seed_of(wallet)?)
        .without_rate_limiting()
        .build()?;
    Ok((w, connections))
}

/// A throwaway in-memory wallet at `mint_url` (a recipient, or a funding source).
pub async fn memory_wallet(mint_url: &str) -> anyhow::Result<Wallet> {
    let db = Arc::new(WalletSqlxDatabase::new(SqlxSqliteConfig::memory()).await?);
    let mut seed = [0u8; 64];
    seed[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    seed[16..32].copy_from_slice(Uuid::new_v4().as_bytes());
    Ok(WalletBuilder::new()
        .mint_url(mint_url.parse().context("mint url")?)
        .unit(CurrencyUnit::Sat)
        .localstore(db)
        .seed(seed)
        .without_rate_limiting()
        .build()?)
}

/// Mints `sats` into an in-memory wallet through a paid quote.
pub async fn fund_memory_wallet(w: &Wallet, mint: &DevMint, sats: u64) -> anyhow::Result<()> {
    use cdk::amount::SplitTarget;
    use cdk::nuts::{MintQuoteState, PaymentMethod};
    let q = w
        .mint_quote(
            PaymentMethod::BOLT11,
            Some(cdk::Amount::from(sats)),
            None,
            None,
        )
        .await?;
    mint.pay_invoice(&q.request, sats).await?;
    for _ in 0..200 {
        if w.check_mint_quote_status(&q.id).await?.state == MintQuoteState::Paid {
            w.mint(&q.id, SplitTarget::default(), None).await?;
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    anyhow::bail!("quote {} was never paid", q.id)
}

/// A database of its own on the per-test server, migrated, with room for workers and
/// wallet managers (sqlx's test pool is capped at 5 connections).
pub async fn test_pool(conn: sqlx::postgres::PgConnectOptions) -> anyhow::Result<PgPool> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(30)
        .connect_with(conn)
        .await?;
    openpleb_common::db::migrate(&pool).await?;
    Ok(pool)
}

/// Redeems a P2PK-locked `token` with `key` into a fresh in-memory wallet; returns the sats
/// received (the token's value less the mint's fee for receiving it).
pub async fn redeem(
    mint_url: &str,
    token: &str,
    key: &cdk::nuts::SecretKey,
) -> anyhow::Result<u64> {
    let wallet = memory_wallet(mint_url).await?;
    let got = wallet
        .receive(
            token,
            cdk::wallet::ReceiveOptions {
                p2pk_signing_keys: vec![key.clone()],
                ..Default::default()
            },
        )
        .await?;
    Ok(got.into())
}
