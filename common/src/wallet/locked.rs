//! Finding the token of a P2PK-locked payout send that was cut after the mint's swap.
//!
//! cdk's send swaps at the mint first and records the token in its saga afterwards. A send cut
//! in between is compensated on the next open (its saga deleted, no token anywhere), while the
//! swap's outputs locked to the recipient stay in the wallet, unusable by it. A release retry
//! that found no token would pay the payout a second time out of sats the wallet's other
//! payouts are owed. So before confirming a locked send, [`note_intent`] writes down the lock,
//! the amount and the swap's inputs; after the next recovery [`settle_intents`] builds the
//! token from the locked outputs that no live operation owns and the mint reports unspent, or,
//! when the outputs never reached the wallet, marks the send lost so it is never paid twice. The outputs pay only the recipient's key, so
//! which of them make up the token does not matter, only their sum.

use cdk::nuts::{Proofs, SpendingConditions, State, Token};
use cdk::wallet::types::ProofInfo;
use cdk::wallet::Wallet;

use super::error::WalletError;
use super::reconcile::{KV_NAMESPACE, KV_SENT};
use crate::domain::keys::XOnlyKey;

/// Where the intent of a locked send (its lock key and amount) is written, by operation id.
const KV_LOCKED_INTENT: &str = "locked_send_intent";

/// What a locked send will create, and what it swaps at the mint to get there.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Intent {
    /// The recipient's key, hex (x-only).
    lock: String,
    amount: u64,
    /// The inputs of the send's swap: spent at the mint exactly when the swap went through.
    inputs: Proofs,
}

/// Writes down, before the send is confirmed, what the locked send `op` will create (`inputs`
/// are the proofs it swaps). Public for the crash tests, which drive a send on the wallet file
/// directly as a cut release leaves it.
pub async fn note_intent(
    w: &Wallet,
    op: &str,
    lock: &XOnlyKey,
    amount: u64,
    inputs: &Proofs,
) -> Result<(), WalletError> {
    let intent = serde_json::to_vec(&Intent {
        lock: lock.to_string(),
        amount,
        inputs: inputs.clone(),
    })
    .map_err(|e| WalletError::Inconsistent(format!("locked send {op}: intent: {e}")))?;
    w.localstore
        .kv_write(KV_NAMESPACE, KV_LOCKED_INTENT, op, &intent)
        .await?;
    Ok(())
}

/// Settles every locked send cut before its token was recorded: run after cdk's recovery, before
/// the wallet is used for anything else (so the mint reporting a send's inputs spent means that
/// send swapped them). Fails, and is tried again on the next open, when the mint cannot be asked.
pub(super) async fn settle_intents(w: &Wallet) -> Result<(), WalletError> {
    for op in w.localstore.kv_list(KV_NAMESPACE, KV_LOCKED_INTENT).await? {
        settle(w, &op).await?;
    }
    Ok(())
}

/// Fails while the locked send `op` left an intent behind with no token: lost in flight (its
/// payout must not be sent again, that would pay out of what other payouts are owed; it needs
/// a person), or not settled yet (the mint could not be asked; tried again on the next open).
pub(super) async fn check_settled(w: &Wallet, op: &str) -> Result<(), WalletError> {
    match w
        .localstore
        .kv_read(KV_NAMESPACE, KV_LOCKED_INTENT, op)
        .await?
    {
        None => Ok(()),
        Some(intent) if intent.as_slice() == LOST => Err(lost(op)),
        Some(_) => Err(WalletError::Inconsistent(format!(
            "locked send {op} is not settled yet"
        ))),
    }
}

/// Forgets the intent of a locked send whose token is stored.
pub(super) async fn done(w: &Wallet, op: &str) -> Result<(), WalletError> {
    forget_intent(w, op).await
}

async fn settle(w: &Wallet, op: &str) -> Result<(), WalletError> {
    let Some(raw) = w
        .localstore
        .kv_read(KV_NAMESPACE, KV_LOCKED_INTENT, op)
        .await?
    else {
        return Ok(());
    };
    if raw.as_slice() == LOST {
        return Ok(());
    }
    if w.localstore
        .kv_read(KV_NAMESPACE, KV_SENT, op)
        .await?
        .is_some()
    {
        return forget_intent(w, op).await;
    }
    if let Ok(uuid) = uuid::Uuid::parse_str(op) {
        if w.localstore.get_saga(&uuid).await?.is_some() {
            // Still an operation of cdk's (an open send holding its token, or one recovery
            // could not settle yet): it has the last word.
            return Ok(());
        }
    }
    let Intent {
        lock,
        amount,
        inputs,
    } = serde_json::from_slice(&raw).map_err(|e| {
        WalletError::Inconsistent(format!("locked send {op}: unreadable intent: {e}"))
    })?;
    let lock: XOnlyKey = lock
        .parse()
        .map_err(|_| WalletError::Inconsistent(format!("locked send {op}: unreadable lock key")))?;
    // Also drops the inputs from the store if spent: the send's compensation made them
    // spendable again, and left there they would fail every later send.
    let swapped = !inputs.is_empty()
        && w.check_proofs_spent(inputs)
            .await?
            .iter()
            .any(|s| s.state == State::Spent);
    if !swapped {
        // Never reached the mint: a fresh send is safe.
        return forget_intent(w, op).await;
    }
    match locked_outputs(w, &lock, amount).await? {
        Some(picked) => {
            let proofs: Proofs = picked.iter().map(|p| p.proof.clone()).collect();
            let token = Token::new(w.mint_url.clone(), proofs, None, w.unit.clone()).to_string();
            // The token is stored before the outputs are marked sent: a cut here leaves the
            // token under `op`, which the next settle sees first.
            w.localstore
                .kv_write(KV_NAMESPACE, KV_SENT, op, token.as_bytes())
                .await?;
            let sent = picked
                .into_iter()
                .map(|mut p| {
                    p.state = State::PendingSpent;
                    p.used_by_operation = None;
                    p
                })
                .collect();
            w.localstore.update_proofs(sent, vec![]).await?;
            forget_intent(w, op).await
        }
        None => {
            // The mint swapped, the wallet never stored the outputs: cdk 0.18.3 makes locked
            // outputs from random secrets it keeps nowhere, so they cannot be restored.
            w.localstore
                .kv_write(KV_NAMESPACE, KV_LOCKED_INTENT, op, LOST)
                .await?;
            tracing::error!(
                operation = op,
                "a locked payout send reached the mint but its outputs were lost in flight; \
                 the payout needs a person"
            );
            Ok(())
        }
    }
}

/// Outputs locked to `lock` that no live operation owns, unspent at the mint, worth exactly
/// `amount` together.
async fn locked_outputs(
    w: &Wallet,
    lock: &XOnlyKey,
    amount: u64,
) -> Result<Option<Vec<ProofInfo>>, WalletError> {
    let held = w
        .localstore
        .get_proofs(
            Some(w.mint_url.clone()),
            Some(w.unit.clone()),
            Some(vec![State::Reserved]),
            None,
        )
        .await?;
    let mut locked = Vec::new();
    for p in held {
        if !locked_to(p.spending_condition.as_ref(), lock) {
            continue;
        }
        if let Some(owner) = p.used_by_operation {
            if w.localstore.get_saga(&owner).await?.is_some() {
                continue;
            }
        }
        locked.push(p);
    }
    if locked.is_empty() {
        return Ok(None);
    }
    let states = w
        .check_proofs_spent(locked.iter().map(|p| p.proof.clone()).collect())
        .await?;
    let mut unspent: Vec<_> = locked
        .into_iter()
        .filter(|p| {
            states
                .iter()
                .any(|s| s.y == p.y && s.state == State::Unspent)
        })
        .collect();
    let mut amounts: Vec<u64> = unspent.iter().map(|p| u64::from(p.proof.amount)).collect();
    let Some(chosen) = pick_exact(&mut amounts, amount) else {
        return Ok(None);
    };
    let mut picked = Vec::with_capacity(chosen.len());
    for want in chosen {
        if let Some(i) = unspent
            .iter()
            .position(|p| u64::from(p.proof.amount) == want)
        {
            picked.push(unspent.swap_remove(i));
        }
    }
    Ok(Some(picked))
}

/// What the intent of a locked send whose outputs were lost in flight is replaced by.
const LOST: &[u8] = b"lost";

fn lost(op: &str) -> WalletError {
    WalletError::Inconsistent(format!(
        "locked send {op} reached the mint but its outputs were lost in flight; \
         the payout needs a person"
    ))
}

async fn forget_intent(w: &Wallet, op: &str) -> Result<(), WalletError> {
    w.localstore
        .kv_remove(KV_NAMESPACE, KV_LOCKED_INTENT, op)
        .await?;
    Ok(())
}

/// Whether a proof's spending condition is a plain P2PK lock to `key`.
fn locked_to(condition: Option<&SpendingConditions>, key: &XOnlyKey) -> bool {
    match condition {
        Some(SpendingConditions::P2PKConditions { data, .. }) => {
            data.x_only_public_key() == key.x_only()
        }
        _ => false,
    }
}

/// Amounts out of `amounts` that sum to exactly `target`, largest first; `None` when there are
/// none. Proof amounts are powers of two, for which taking the largest that still fits finds a
/// sum whenever one exists.
fn pick_exact(amounts: &mut [u64], target: u64) -> Option<Vec<u64>> {
    amounts.sort_unstable_by(|a, b| b.cmp(a));
    let mut left = target;
    let mut chosen = Vec::new();
    for &a in amounts.iter() {
        if a <= left {
            chosen.push(a);
            left -= a;
        }
        if left == 0 {
            return Some(chosen);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_an_exact_sum_of_powers_of_two() {
        assert_eq!(pick_exact(&mut [64, 32, 4], 100), Some(vec![64, 32, 4]));
        assert_eq!(
            pick_exact(&mut [4, 64, 32, 4, 64, 32], 100),
            Some(vec![64, 32, 4])
        );
        assert_eq!(pick_exact(&mut [2, 2, 2], 4), Some(vec![2, 2]));
        assert_eq!(pick_exact(&mut [64, 32], 100), None);
        assert_eq!(pick_exact(&mut [], 1), None);
    }
}
