//! Periodic backstop for lapses: every overdue offer, and every claim still waiting for its
//! bond past its deadline, is lapsed here in case its delayed job is missing, gave up or ran a
//! moment early (a worker fleet that was down, a job out of attempts, clocks apart). Offers
//! overdue by more than a grace period are also reported, since nothing should stay stuck
//! that long.
//!
//! Safe to repeat: each lapse is the same compare-and-set as the delayed job's, so whichever
//! comes first acts and the other finds nothing to do.

use std::sync::Arc;

use apalis::prelude::{BoxDynError, Data};
use chrono::Utc;
use openpleb_common::db::alerts::STUCK_OFFER_GRACE;
use openpleb_common::db::{claims, offers};
use openpleb_common::jobs::ExpireOffers;
use openpleb_common::trade::claim_lapse;

use crate::WorkerContext;
use openpleb_common::trade::lapse::lapse;

/// Handles one sweep.
pub async fn handle(job: ExpireOffers, ctx: Data<Arc<WorkerContext>>) -> Result<(), BoxDynError> {
    let _ = job;
    super::with_timeout(run(&ctx)).await
}

async fn run(ctx: &WorkerContext) -> Result<(), BoxDynError> {
    for offer in offers::overdue(&ctx.pool, std::time::Duration::ZERO, 200).await? {
        let overdue = offer
            .expires_at
            .map(|d| (Utc::now() - d).num_seconds())
            .unwrap_or(0);
        if overdue > i64::try_from(STUCK_OFFER_GRACE.as_secs()).unwrap_or(i64::MAX) {
            tracing::error!(offer = %offer.id, status = %offer.status, overdue_secs = overdue,
                "offer stuck past its deadline");
        }
        if let Err(e) = lapse(ctx, offer.id, offer.status).await {
            tracing::warn!(offer = %offer.id, error = %e, "lapse failed; retried next sweep");
        }
    }
    for claim in claims::overdue(&ctx.pool, std::time::Duration::ZERO, 200).await? {
        if let Err(e) = claim_lapse::lapse(ctx, claim).await {
            tracing::warn!(claim = %claim, error = %e, "claim lapse failed; retried next sweep");
        }
    }
    Ok(())
}
