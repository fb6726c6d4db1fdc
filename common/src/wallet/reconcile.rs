//! Reconciling a wallet with the mint after crashes and cut operations, on request.
//!
//! The steps are [`super::recovery`]'s, which every open runs as well; here they run under the
//! manager's lock and lease without waiting for another process, and what they found and did
//! is reported ([`Reconciled`]).

use std::time::Duration;

use cdk::wallet::types::OperationData;

use super::error::WalletError;
use super::layout::WalletId;
use super::locked;
use super::manager::{balances, Balances, WalletManager};
use super::opening::Open;
use super::recovery::{drop_spent_unspent, recover_sagas, settle_orphan_proofs};

/// What reconciling one wallet with the mint found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reconciled {
    /// Balances before.
    pub before: Balances,
    /// Balances after.
    pub after: Balances,
    /// Interrupted operations that cdk's recovery took forward or found complete.
    pub recovered: usize,
    /// Interrupted operations rolled back (their proofs made spendable again).
    pub compensated: usize,
    /// Operations recovery could not settle now (the mint unreachable, say); tried next time.
    pub unsettled: usize,
    /// Sent tokens not yet claimed by their recipients (their send operation stays open).
    pub open_sends: usize,
    /// Sats of proofs no operation owned that the mint reports spent: dropped from the wallet.
    pub orphans_spent: u64,
    /// Sats of reserved proofs no operation owned that the mint reports unspent: made
    /// spendable again.
    pub orphans_returned: u64,
    /// Sats of an incoming token whose receive was cut before it reached the mint (pending
    /// proofs with no operation): dropped, the token is still its sender's.
    pub orphans_abandoned: u64,
    /// Sats of proofs no operation owns that could not be settled: pending at the mint, or
    /// reserved but locked to someone else's key. Need a person if they persist.
    pub orphans_left: u64,
}

impl Reconciled {
    /// Whether anything was changed or needs a person's attention.
    pub fn noteworthy(&self) -> bool {
        self.compensated + self.unsettled > 0
            || self.orphans_spent + self.orphans_returned + self.orphans_abandoned > 0
            || self.orphans_left > 0
            || self.before != self.after
    }
}

impl WalletManager {
    /// Reconciles the wallet with the mint: finishes or rolls back interrupted operations
    /// (cdk's saga recovery, after stashing the tokens of unfinished sends), then asks the mint
    /// (NUT-07) about reserved, pending and sent proofs that no live operation owns: spent ones
    /// are dropped, unspent reserved ones become spendable, unspent pending ones (a receive cut
    /// before it reached the mint) are dropped, unclaimed sent ones stay.
    ///
    /// Does not wait for another process' lease ([`WalletError::Busy`] at once): a wallet in use
    /// elsewhere is reconciled on that process' next open anyway. A wallet this call opened is
    /// closed again before its lock is given up, so its lease goes straight back and nothing
    /// uses it in between without recovery.
    pub async fn reconcile(&self, id: &WalletId) -> Result<Reconciled, WalletError> {
        self.run_with(
            id,
            Open {
                create: false,
                lease_wait: Duration::ZERO,
                recover: false,
                close_after: true,
            },
            |w| async move {
                let before = balances(&w).await?;
                let report = recover_sagas(&w).await?;
                locked::settle_intents(&w).await?;
                if report.compensated > 0 {
                    drop_spent_unspent(&w).await?;
                }
                let orphans = settle_orphan_proofs(&w).await?;
                let open_sends = w
                    .localstore
                    .get_incomplete_sagas()
                    .await?
                    .iter()
                    .filter(|s| matches!(s.data, OperationData::Send(_)))
                    .count();
                Ok(Reconciled {
                    before,
                    after: balances(&w).await?,
                    recovered: report.recovered,
                    compensated: report.compensated,
                    unsettled: report.skipped + report.failed,
                    open_sends,
                    orphans_spent: orphans.spent,
                    orphans_returned: orphans.returned,
                    orphans_abandoned: orphans.abandoned,
                    orphans_left: orphans.left,
                })
            },
        )
        .await
    }
}
