//! The one-time move of the legacy treasury wallet (`platform_treasury`, seeded from
//! `WALLET_MASTER_SECRET`) into the treasury wallet (`platform_treasury_v2`, seeded from
//! `TREASURY_SECRET`), so the new seed strands nothing of the fees collected before it. Every
//! reconciliation run calls it; once the `treasury` row says DONE it is one read and nothing
//! else, so it runs once per deployment.
//!
//! The move is a payout from the legacy wallet to the treasury key, received into the new
//! wallet. Safe to repeat, and to crash at any line, as a payout's release and sweep are: the
//! send's operation id is stored in PostgreSQL (a compare-and-set on the id this run read)
//! before anything leaves the legacy wallet, and a rerun asks the legacy wallet for that
//! operation's token instead of sending again; the token, P2PK-locked to the treasury key (so
//! worth nothing to whoever reads the row), is stored before it is received; a receive found
//! already spent is checked against the new wallet's own record, so a rerun after its own
//! receive marks it DONE, never receives twice; DONE is a compare-and-set that is never undone.

use std::str::FromStr;

use apalis::prelude::BoxDynError;
use openpleb_common::db::treasury;
use openpleb_common::wallet::treasury::{TreasuryKey, LEGACY_TREASURY_WALLET, TREASURY_WALLET};
use openpleb_common::wallet::{RecordOperation, WalletError, WalletId};

use crate::WorkerContext;

/// Failpoint: the legacy wallet's send is made (its sats left it), its token not stored yet.
pub const CUT_LEGACY_SENT: &str = "legacy_treasury:sent";
/// Failpoint: the token is received into the new wallet, the move not marked DONE yet.
pub const CUT_LEGACY_RECEIVED: &str = "legacy_treasury:received";

fn cut(point: &str) -> BoxDynError {
    format!("cut at {point}").into()
}

/// Moves the legacy wallet's balance into the treasury wallet unless that is done; returns the
/// sats moved by this call.
pub async fn run(ctx: &WorkerContext) -> Result<u64, BoxDynError> {
    let row = treasury::get(&ctx.pool).await?;
    if row.legacy_state == "DONE" {
        return Ok(0);
    }
    let legacy = WalletId::parse(LEGACY_TREASURY_WALLET)?;
    let new = WalletId::parse(TREASURY_WALLET)?;
    let key = TreasuryKey::from_config(&ctx.config)?;
    let secret = key
        .secret
        .clone()
        .ok_or("the legacy treasury sweep needs TREASURY_SECRET")?;
    let mut token = row.legacy_token.clone();
    if token.is_none() {
        if let Some(op) = &row.legacy_operation_id {
            // A send recorded by an earlier run: its token if it got as far as making one
            // (else it paid nothing, and a fresh send below replaces it).
            token = ctx.wallets()?.sent_token(&legacy, op).await?;
            if let Some(t) = &token {
                treasury::legacy_set_token(&ctx.pool, op, t).await?;
            }
        }
    }
    let token = match token {
        Some(t) => t,
        None => match send(ctx, &legacy, &key, row.legacy_operation_id.as_deref()).await? {
            Some(t) => t,
            None => return Ok(0),
        },
    };
    let value: u64 = cdk::nuts::Token::from_str(&token)?.value()?.into();
    match ctx.wallets()?.receive(&new, &token, vec![secret]).await {
        Ok(_) => {}
        Err(WalletError::Cdk(cdk::Error::TokenAlreadySpent)) => {
            if !ctx.wallets()?.received(&new, &token).await? {
                // Only a holder of TREASURY_SECRET can have taken it: an incident, not a move.
                tracing::error!(
                    sats = value,
                    "the legacy treasury's token was spent by someone other than the treasury"
                );
                treasury::legacy_done(&ctx.pool, 0).await?;
                return Ok(0);
            }
        }
        Err(e) => return Err(e.into()),
    }
    if ctx.cuts.hit(CUT_LEGACY_RECEIVED) {
        return Err(cut(CUT_LEGACY_RECEIVED));
    }
    if treasury::legacy_done(&ctx.pool, value).await? {
        tracing::info!(
            sats = value,
            "legacy treasury wallet moved into the treasury wallet"
        );
    }
    super::withdraw_treasury::store_balance(ctx).await?;
    Ok(value)
}

/// Sends the legacy wallet's whole spendable balance as a token locked to the treasury key,
/// its operation recorded first; stores the token. `None` when there is nothing to move (the
/// move is then DONE).
async fn send(
    ctx: &WorkerContext,
    legacy: &WalletId,
    key: &TreasuryKey,
    expected: Option<&str>,
) -> Result<Option<String>, BoxDynError> {
    if !ctx.wallets()?.exists(legacy) {
        treasury::legacy_done(&ctx.pool, 0).await?;
        return Ok(None);
    }
    let held = ctx.wallets()?.balance(legacy).await?;
    if held.pending + held.reserved > 0 {
        // Left by a cut operation: the reconciliation settles it first, then this moves all.
        return Err("the legacy treasury wallet has unsettled proofs; moved once settled".into());
    }
    let dust = ctx.wallets()?.fee_to_spend_all(legacy).await?;
    if held.unspent == 0 || held.unspent <= dust {
        if held.unspent > 0 {
            tracing::warn!(
                sats = held.unspent,
                "the legacy treasury holds only what spending it would cost; left there"
            );
        }
        treasury::legacy_done(&ctx.pool, 0).await?;
        return Ok(None);
    }
    let pool = ctx.pool.clone();
    let expected = expected.map(str::to_owned);
    let record: RecordOperation = Box::new(move |op: String| {
        Box::pin(async move {
            match treasury::legacy_set_operation(&pool, expected.as_deref(), &op).await {
                Ok(true) => Ok(()),
                Ok(false) => Err(WalletError::Superseded),
                Err(e) => Err(e.into()),
            }
        })
    });
    let sent = match ctx
        .wallets()?
        .send_recorded(legacy, held.unspent, Some(key.lock), record)
        .await
    {
        Ok(sent) => sent,
        // Another run recorded its send first; the next run follows it.
        Err(WalletError::Superseded) => return Err("the legacy move is under way elsewhere".into()),
        Err(e) => return Err(e.into()),
    };
    if ctx.cuts.hit(CUT_LEGACY_SENT) {
        return Err(cut(CUT_LEGACY_SENT));
    }
    let row = treasury::get(&ctx.pool).await?;
    let op = row
        .legacy_operation_id
        .ok_or("the legacy move's operation went missing")?;
    treasury::legacy_set_token(&ctx.pool, &op, &sent.token).await?;
    Ok(Some(sent.token))
}
