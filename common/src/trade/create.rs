//! Create an offer (maker): convert the fiat amount at the current price, freeze fees and bonds,
//! and issue the deposit invoice D = S + PF + TF + MB. The offer is CREATED until the deposit
//! arrives (the quote watcher, [`super::paid`]) or a token funds it ([`super::fund`]).
//!
//! A session may have at most `OFFER_MAX_OPEN` open offers (unfunded, listed, or claimed with
//! the bond unpaid), so one session cannot fill the book or the mint with invoices.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::quote::{watch, Invoice};
use super::reputation::{self, Reputation};
use super::subscribe::{self, Target};
use super::{entered, payout_key, unix, TradeCtx, TradeError};
use crate::db::notify_targets::Owner;
use crate::db::offers::{self, NewOffer, Offer};
use crate::db::quotes::OfferQuote;
use crate::db::{limits, providers};
use crate::domain::money::{sats_for_fiat, OfferAmounts};
use crate::domain::payout::QuotePurpose;
use crate::domain::role::Role;
use crate::keyring::data::Field;
use crate::wallet::WalletId;

/// What the maker asks for.
#[derive(Debug, Clone)]
pub struct NewOfferInput {
    /// The maker's session.
    pub session: Uuid,
    /// Fiat amount in minor units (positive).
    pub fiat_amount_minor: i64,
    /// ISO 4217; must be the platform's currency.
    pub currency: String,
    /// Fiat provider.
    pub fiat_provider_id: Uuid,
    /// Where the taker pays.
    pub payment_details: String,
    /// Free text.
    pub description: Option<String>,
    /// INVOICE_PAID lifetime, seconds (default from the configuration).
    pub lifetime_secs: Option<u64>,
    /// The maker's per-trade payout key (hex).
    pub maker_payout_pubkey: String,
    /// Reputation tokens a taker must stake to claim it.
    pub min_taker_stake: u32,
    /// The maker's reputation outputs and stake.
    pub reputation: Reputation,
    /// Where the maker is told what happens (Web Push, webhooks).
    pub notify: Vec<Target>,
}

/// A created offer and its deposit invoice.
#[derive(Debug, Clone)]
pub struct CreatedOffer {
    /// The offer.
    pub offer: Offer,
    /// The deposit invoice.
    pub deposit: Invoice,
    /// The signing secret of the webhook given with it, shown this once.
    pub webhook_secret: Option<String>,
}

/// Creates an offer.
pub async fn create(ctx: &TradeCtx, input: NewOfferInput) -> Result<CreatedOffer, TradeError> {
    let c = &ctx.config;
    // Check the input.
    if input.currency.to_ascii_uppercase() != c.limits.fiat_currency {
        return Err(TradeError::invalid(
            "unsupported_currency",
            "currency",
            format!("this platform trades {}", c.limits.fiat_currency),
        ));
    }
    let fiat = u64::try_from(input.fiat_amount_minor).map_err(|_| {
        TradeError::invalid("invalid_fiat_amount", "fiatAmount", "must be positive")
    })?;
    if fiat > c.limits.max_fiat_amount_minor {
        return Err(TradeError::invalid(
            "fiat_amount_too_large",
            "fiatAmount",
            format!("at most {} minor units", c.limits.max_fiat_amount_minor),
        ));
    }
    let key = payout_key(&input.maker_payout_pubkey, "makerPayoutPubkey")?;
    let lifetime = match input.lifetime_secs {
        Some(s) if std::time::Duration::from_secs(s) > c.timers.invoice_paid_max => {
            return Err(TradeError::invalid(
                "lifetime_too_long",
                "lifetimeSecs",
                format!("at most {} s", c.timers.invoice_paid_max.as_secs()),
            ))
        }
        Some(s) => s,
        None => c.timers.invoice_paid_default.as_secs(),
    };
    reputation::check(ctx, &input.reputation)?;
    if input.min_taker_stake as usize > ctx.config.reputation.max_stake {
        return Err(TradeError::invalid(
            "min_stake_too_large",
            "minTakerStake",
            format!("at most {}", ctx.config.reputation.max_stake),
        ));
    }
    match providers::get(&ctx.pool, input.fiat_provider_id).await? {
        Some(p) if p.active => {}
        _ => {
            return Err(TradeError::invalid(
                "unknown_fiat_provider",
                "fiatProviderId",
                "no such active fiat provider",
            ))
        }
    }

    subscribe::check_all(ctx, &input.notify)?;

    // Refuse early, before an invoice is made; counted again under the lock below.
    {
        let mut conn = ctx.pool.acquire().await?;
        check_open(&mut conn, ctx, input.session).await?;
    }

    ctx.need_mint()?;
    // Decide the amounts.
    let price = ctx
        .price
        .price(&c.limits.fiat_currency)
        .await
        .map_err(|e| TradeError::PriceUnavailable(e.to_string()))?;
    let too_large =
        || TradeError::invalid("fiat_amount_too_large", "fiatAmount", "amount overflows");
    let escrow = sats_for_fiat(fiat, price.minor_per_btc).ok_or_else(too_large)?;
    let amounts = OfferAmounts::new(escrow, &c.fees).ok_or_else(too_large)?;
    let deposit = amounts.deposit().ok_or_else(too_large)?;

    // Act: the deposit invoice, locked to a key of the maker's wallet but made without opening
    // it (no wait for a lease the worker may hold), then offer, quote and watcher in one
    // transaction. A failure after the quote leaves only an unpaid invoice behind.
    let wallet = WalletId::session(input.session);
    let quote = ctx.desk.create_locked_quote(deposit).await?;
    let id = Uuid::new_v4();
    let expires_at: DateTime<Utc> = unix(quote.expiry);
    let mut tx = ctx.pool.begin().await?;
    // Under the session's lock: two creations of one session cannot both count the room for
    // one. A refusal here leaves an unpaid, unwatched invoice behind, as any failure after the
    // quote does.
    limits::lock_session(&mut tx, input.session).await?;
    check_open(&mut tx, ctx, input.session).await?;
    let offer = offers::insert(
        &mut tx,
        &NewOffer {
            id,
            maker_session_id: input.session,
            fiat_amount_minor: input.fiat_amount_minor,
            fiat_currency: c.limits.fiat_currency.clone(),
            fiat_provider_id: input.fiat_provider_id,
            payment_details: ctx.seal(id, Field::PaymentDetails, input.payment_details.as_bytes()),
            description: input.description,
            price_minor_per_btc: i64::try_from(price.minor_per_btc).unwrap_or(i64::MAX),
            amounts,
            maker_payout_pubkey: key.to_string(),
            lifetime_secs: i64::try_from(lifetime).unwrap_or(i64::MAX),
            timer: c.timers.created,
            quote_expires_at: expires_at,
            deposit_quote_id: Some(quote.quote_id.clone()),
            min_taker_stake: i32::try_from(input.min_taker_stake).unwrap_or(i32::MAX),
        },
    )
    .await?;
    entered(ctx, &mut tx, &offer, None).await?;
    let owner = reputation::Owner::Offer(id, Role::Maker);
    let staked = reputation::record(ctx, &mut tx, owner, &input.reputation).await?;
    let maker = Owner {
        offer_id: id,
        role: Role::Maker,
        claim_id: None,
    };
    let webhook_secret = subscribe::store_all(ctx, &mut tx, &maker, &input.notify).await?;
    let offer = Offer {
        maker_stake: staked,
        ..offer
    };
    watch(
        &mut tx,
        &OfferQuote {
            quote_id: &quote.quote_id,
            wallet_id: wallet.as_str(),
            amount_sats: deposit,
            expires_at,
            offer_id: id,
            purpose: QuotePurpose::Deposit,
            refund_pubkey: &offer.maker_payout_pubkey,
            lock_path: Some(quote.lock_path.to_string()),
        },
    )
    .await?;
    tx.commit().await?;
    crate::metrics::offer_created();
    Ok(CreatedOffer {
        offer,
        deposit: Invoice {
            quote_id: quote.quote_id,
            request: quote.request,
            amount_sats: deposit,
            expires_at,
        },
        webhook_secret,
    })
}

/// Refuses a new offer when `session` already has its share of open ones.
async fn check_open(
    conn: &mut sqlx::PgConnection,
    ctx: &TradeCtx,
    session: Uuid,
) -> Result<(), TradeError> {
    let open = limits::open_offers(conn, session).await?;
    if open >= ctx.config.limits.offer_max_open {
        return Err(TradeError::TooManyOpenOffers(open));
    }
    // Cancelled offers' invoices stay payable at the mint until they expire there.
    let payable = limits::payable_quotes(conn, session).await?;
    if payable >= ctx.config.limits.quote_max_payable {
        return Err(TradeError::TooManyPayableQuotes(payable));
    }
    Ok(())
}
