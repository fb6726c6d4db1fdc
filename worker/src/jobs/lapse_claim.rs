//! Ends a claim whose bond was not paid by its deadline: the trade step
//! [`openpleb_common::trade::claim_lapse`] asks the mint about the bond first, then lapses the
//! claim.
//!
//! Safe to repeat, and run from two places (this delayed job and the expiry sweep): a bond the
//! mint reports paid goes through the same compare-and-set path as its watcher (the quote is
//! marked minted once), and the lapse itself is a compare-and-set on the claim still waiting
//! past its deadline, with its stake's return in the same transaction.

use std::sync::Arc;

use apalis::prelude::{BoxDynError, Data};
use openpleb_common::jobs::LapseClaim;
use openpleb_common::trade::claim_lapse::lapse;

use crate::WorkerContext;

/// Handles one scheduled claim lapse.
pub async fn handle(job: LapseClaim, ctx: Data<Arc<WorkerContext>>) -> Result<(), BoxDynError> {
    super::with_timeout(async {
        lapse(&ctx, job.claim_id).await?;
        Ok(())
    })
    .await
}
