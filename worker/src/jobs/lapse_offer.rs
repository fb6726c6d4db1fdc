//! Applies the lapse of an offer's state when its timer runs out: the trade step
//! [`openpleb_common::trade::lapse`] decides and moves (DESIGN.md section 3).
//!
//! Safe to repeat, and run from two places (this delayed job and the cron's backstop): nothing
//! happens unless the offer is still in the state the job is for and past its deadline, every
//! move is a compare-and-set on that state, and the settlement is recorded in the transaction
//! that wins the move. A deposit re-check that finds the quote paid goes through the same
//! compare-and-set path as the quote watcher.

use std::sync::Arc;

use apalis::prelude::{BoxDynError, Data};
use openpleb_common::jobs::LapseOffer;
use openpleb_common::trade::lapse::lapse;

use crate::WorkerContext;

/// Handles one scheduled lapse.
pub async fn handle(job: LapseOffer, ctx: Data<Arc<WorkerContext>>) -> Result<(), BoxDynError> {
    super::with_timeout(async {
        lapse(&ctx, job.offer_id, job.status).await?;
        Ok(())
    })
    .await
}
