//! Job handlers, one file each. Every handler's doc comment says why running it twice, or
//! crashing at any line and running again, neither loses nor duplicates a sat.

pub mod cleanup_wallets;
pub mod deliver_notice;
pub mod expire_offers;
pub mod lapse_claim;
pub mod lapse_offer;
pub mod prune;
pub mod receive_funding;
pub mod reconcile_wallets;
pub mod release_payouts;
pub mod remind_party;
pub mod sweep_legacy_treasury;
pub mod sweep_quotes;
pub mod watch_mint_quote;
pub mod withdraw_treasury;

use std::time::Duration;

use apalis::prelude::BoxDynError;

/// Each handler bounds its own run time: apalis' outer timeout layer would leave the job row
/// marked Running forever, while an error here is recorded and retried.
pub const JOB_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `fut` under [`JOB_TIMEOUT`].
pub async fn with_timeout<T, F>(fut: F) -> Result<T, BoxDynError>
where
    F: std::future::Future<Output = Result<T, BoxDynError>>,
{
    tokio::time::timeout(JOB_TIMEOUT, fut)
        .await
        .map_err(|_| BoxDynError::from("job timed out"))?
}
