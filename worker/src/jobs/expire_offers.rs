//! Periodic backstop for lapses: every overdue offer is lapsed here in case its delayed job is
//! missing or gave up (a worker fleet that was down, a job out of attempts). Offers overdue by
//! more than a grace period are also reported, since nothing should stay stuck that long.
//!
//! Safe to repeat: each lapse is the same compare-and-set as the delayed job's, so whichever
//! comes first acts and the other finds nothing to do.

use std::sync::Arc;

use apalis::prelude::{BoxDynError, Data};
use chrono::Utc;
use openpleb_common::db::alerts::STUCK_OFFER_GRACE;
use openpleb_common::db::offers;
use openpleb_common::jobs::ExpireOffers;

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
    Ok(())
}
