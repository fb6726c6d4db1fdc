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

/// Runs `cmd` to its end and checks that it refused to start: exit code 2 and one line on
/// stderr, its reason, which it returns.
pub fn refuses_to_start(mut cmd: std::process::Command) -> anyhow::Result<String> {
    let out = cmd.output().context("run the binary")?;
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    let code = out.status.code();
    anyhow::ensure!(code == Some(2), "exit code {code:?}, not 2: {stderr}");
    anyhow::ensure!(stderr.lines().count() == 1, "not one line: {stderr}");
    Ok(stderr)
}

/// [`refuses_to_start`] on a thread of its own, so the runtime (a mint in this process) goes on.
pub async fn refuses_to_start_aside(cmd: std::process::Command) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || refuses_to_start(cmd)).await?
}
