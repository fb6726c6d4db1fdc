//! The checks a scenario ends with, each named for what it proves: a party's payouts redeem to
//! exactly what it is owed with its own key (and with no other key).

use anyhow::Context;
use cdk::nuts::SecretKey;
use serde_json::Value;

use super::transport::Transport;

/// The tokens of `payouts` (as `GET /offers/{id}/payouts` lists them).
pub fn tokens(payouts: &[Value]) -> anyhow::Result<Vec<String>> {
    payouts
        .iter()
        .map(|p| p["token"].as_str().map(str::to_owned).context("token"))
        .collect()
}

/// Checks that `payouts` redeem exactly `sats` with `key`.
pub async fn redeems<T: Transport + ?Sized>(
    api: &T,
    payouts: &[Value],
    key: &SecretKey,
    sats: u64,
) -> anyhow::Result<()> {
    let got = api.redeem(&tokens(payouts)?, key).await?;
    anyhow::ensure!(got == sats, "redeemed {got} sats, expected exactly {sats}");
    Ok(())
}

/// Checks that `payouts` cannot be redeemed with `key` (they are locked to another key).
pub async fn locked_against<T: Transport + ?Sized>(
    api: &T,
    payouts: &[Value],
    key: &SecretKey,
) -> anyhow::Result<()> {
    let tried = api.redeem(&tokens(payouts)?, key).await;
    anyhow::ensure!(tried.is_err(), "redeemed with another party's key");
    Ok(())
}
