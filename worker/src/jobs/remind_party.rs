//! Reminds a party before the deadline at which its silence decides (confirm or the taker is
//! paid; dispute or forfeit; send the receipt or lose the bond), if the offer is still where
//! the reminder was planned for.
//!
//! Safe to repeat: it reads the offer and enqueues the reminder's deliveries under the
//! reminder's own key (offer, state visit, offset), so a second run adds none; an offer that
//! moved on (another state, or the same state entered again later) is left alone.

use std::sync::Arc;

use apalis::prelude::{BoxDynError, Data};
use openpleb_common::db::offers;
use openpleb_common::domain::notify::{reminder_action, Notice};
use openpleb_common::jobs::RemindParty;
use openpleb_common::notify::{tell, Recipient};

use crate::WorkerContext;

/// Handles one reminder.
pub async fn handle(job: RemindParty, ctx: Data<Arc<WorkerContext>>) -> Result<(), BoxDynError> {
    super::with_timeout(run(job, &ctx)).await
}

async fn run(job: RemindParty, ctx: &WorkerContext) -> Result<(), BoxDynError> {
    let Some(offer) = offers::get(&ctx.pool, job.offer_id).await? else {
        return Ok(());
    };
    let same_visit = offer.status == job.status
        && offer.state_entered_at.timestamp_micros() == job.entered_at_micros;
    if !same_visit || offer.expires_at.is_none() {
        return Ok(());
    }
    let notice = Notice {
        offer_id: offer.id,
        status: offer.status.as_str().to_owned(),
        deadline: offer.expires_at,
        action: reminder_action(offer.status).as_str().to_owned(),
    };
    let key = format!(
        "{}:{}:{}:{}:remind:{}",
        offer.id, offer.status, job.entered_at_micros, job.role, job.before_secs
    );
    let mut tx = ctx.pool.begin().await?;
    tell(
        &mut tx,
        offer.id,
        Recipient::Party(job.role),
        &notice,
        true,
        &key,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
