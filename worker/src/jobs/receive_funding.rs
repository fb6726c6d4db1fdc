//! Receives a funding token the api sealed to the workers' key into the maker's session
//! wallet, and moves the offer to INVOICE_PAID (or refunds a token that arrived too late).
//!
//! Safe to repeat and to cut anywhere: the intent is locked for the run and moves from OPEN
//! once, in the transaction that records its money; each run first asks the session wallet
//! what it received of the token, so a run after a cut between the receive and its record
//! records what the wallet holds instead of receiving again
//! ([`openpleb_common::trade::fund_receive`]). An intent the job gave up on is settled by the
//! reconciliation with the same work.

use std::sync::Arc;

use apalis::prelude::{BoxDynError, Data};
use openpleb_common::jobs::ReceiveFunding;
use openpleb_common::trade::fund_receive::{self, Ran};

use crate::WorkerContext;

/// Handles one receive.
pub async fn handle(job: ReceiveFunding, ctx: Data<Arc<WorkerContext>>) -> Result<(), BoxDynError> {
    super::with_timeout(run(job, &ctx)).await
}

async fn run(job: ReceiveFunding, ctx: &WorkerContext) -> Result<(), BoxDynError> {
    match fund_receive::receive(ctx, job.intent_id).await? {
        Ran::Ended(end) => {
            tracing::info!(intent = %job.intent_id, end = ?end, "funding token settled");
        }
        Ran::Left => {}
    }
    Ok(())
}
