//! P2PK-locked payout sends that are delivered exactly once, wherever they are cut.
//!
//! cdk 0.18.3's send makes the locked outputs from random secrets it keeps nowhere until the
//! token is recorded: a send cut after the mint's swap can neither be recovered nor safely made
//! again (a second send would pay out of what the wallet's other payouts are owed). So a locked
//! send here is the wallet's own swap. cdk's send preparation picks the inputs (the fee fit
//! included), then the swap's outputs (locked to the recipient, and the change back to the
//! wallet) are drawn and written into the wallet file with the inputs, the inputs are reserved,
//! and only then is the mint asked. However the send is cut, [`finish`] ends it the same way:
//! it asks the mint for the same swap again, or, when the mint already did it, for its
//! signatures on those very outputs (NUT-09 restore). Both give the same token. Only when the
//! mint signed none of the outputs and the inputs are spent elsewhere is the send dropped, and
//! then it paid nothing. The spendable secrets stay in the wallet file, never in PostgreSQL.

use std::collections::HashMap;

use cdk::amount::SplitTarget;
use cdk::dhke::{blind_message, construct_proofs};
use cdk::nuts::{
    BlindSignature, BlindedMessage, Id, PreMintSecrets, Proofs, ProofsMethods, RestoreRequest,
    SecretKey, SpendingConditions, State, SwapRequest, Token,
};
use cdk::secret::Secret;
use cdk::util::unix_time;
use cdk::wallet::types::{ProofInfo, Transaction, TransactionDirection, TransactionStatus};
use cdk::wallet::Wallet;
use cdk::Amount;

use super::error::WalletError;
use super::kv::{KV_NAMESPACE, KV_SENT};
use crate::domain::keys::XOnlyKey;

/// Where an unfinished locked send (its inputs and drawn outputs) is written, by operation id.
const KV_LOCKED_SEND: &str = "locked_send";

/// One output of the swap as drawn: enough to blind it again and to unblind its signature.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Output {
    amount: Amount,
    secret: Secret,
    r: SecretKey,
}

/// A locked send between drawing its outputs and storing its token.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Intent {
    keyset: Id,
    /// What the swap spends: spent at the mint exactly when the swap went through.
    inputs: Proofs,
    /// Outputs locked to the recipient: the token.
    locked: Vec<Output>,
    /// Outputs back to the wallet.
    change: Vec<Output>,
}

/// How an unfinished locked send ended.
enum Finished {
    /// The swap went through (now or before): the token.
    Sent(String),
    /// The mint signed none of the outputs and the inputs are spent elsewhere: nothing was paid.
    NotSent,
}

/// Sends `amount` sats locked to `lock` as the operation `op` (recorded by the caller first),
/// swapping `inputs` (picked by cdk's send preparation, which the caller has cancelled). The
/// mint's input fee comes out of the change. Public for the crash tests, which drive a send on
/// the wallet file directly as a cut release leaves it.
pub async fn send(
    w: &Wallet,
    op: &str,
    lock: &XOnlyKey,
    amount: u64,
    inputs: Proofs,
) -> Result<String, WalletError> {
    let keyset = w.active_keyset().await?.id;
    let split = w.get_keyset_fees_and_amounts_by_id(keyset).await?;
    let fee: u64 = w.get_proofs_fee(&inputs).await?.total.into();
    let held: u64 = inputs.iter().map(|p| u64::from(p.amount)).sum();
    let change = held
        .checked_sub(amount)
        .and_then(|c| c.checked_sub(fee))
        .ok_or_else(|| {
            WalletError::Inconsistent(format!(
                "locked send {op}: inputs of {held} sats cannot pay {amount} and a fee of {fee}"
            ))
        })?;
    let condition = SpendingConditions::new_p2pk(lock.to_lock_key(), None);
    let locked = PreMintSecrets::with_conditions(
        keyset,
        Amount::from(amount),
        &SplitTarget::default(),
        &condition,
        &split,
    )
    .map_err(cdk::Error::from)?;
    let back = if change == 0 {
        PreMintSecrets::new(keyset)
    } else {
        PreMintSecrets::random(
            keyset,
            Amount::from(change),
            &SplitTarget::default(),
            &split,
        )
        .map_err(cdk::Error::from)?
    };
    let drawn = |p: PreMintSecrets| -> Vec<Output> {
        p.secrets
            .into_iter()
            .map(|s| Output {
                amount: s.amount,
                secret: s.secret,
                r: s.r,
            })
            .collect()
    };
    let intent = Intent {
        keyset,
        inputs,
        locked: drawn(locked),
        change: drawn(back),
    };
    let raw = serde_json::to_vec(&intent)
        .map_err(|e| WalletError::Inconsistent(format!("locked send {op}: intent: {e}")))?;
    // Written before anything can reach the mint; the reservation keeps other sends off the
    // inputs until this one is finished.
    w.localstore
        .kv_write(KV_NAMESPACE, KV_LOCKED_SEND, op, &raw)
        .await?;
    let ys = intent.inputs.ys().map_err(cdk::Error::from)?;
    w.localstore
        .reserve_proofs(ys, &operation_uuid(op)?)
        .await?;
    match finish(w, op, intent).await? {
        Finished::Sent(token) => Ok(token),
        Finished::NotSent => Err(WalletError::Inconsistent(format!(
            "locked send {op}: its inputs were spent elsewhere"
        ))),
    }
}

/// The token of the locked send `op` if it is unfinished: finished now (the same token whenever
/// the mint already swapped). `None` when there is no such send or it paid nothing, so a new
/// send is safe.
pub(super) async fn resume(w: &Wallet, op: &str) -> Result<Option<String>, WalletError> {
    let Some(intent) = read_intent(w, op).await? else {
        return Ok(None);
    };
    Ok(match finish(w, op, intent).await? {
        Finished::Sent(token) => Some(token),
        Finished::NotSent => None,
    })
}

/// Finishes every unfinished locked send: run on open and by the reconciliation, before the
/// wallet is used for anything else. Fails, and is tried again next time, while the mint
/// cannot answer.
pub(super) async fn settle_intents(w: &Wallet) -> Result<(), WalletError> {
    for op in w.localstore.kv_list(KV_NAMESPACE, KV_LOCKED_SEND).await? {
        resume(w, &op).await?;
    }
    Ok(())
}

/// Whether `op` is an unfinished locked send (its reserved inputs belong to it).
pub(super) async fn is_unfinished(w: &Wallet, op: &uuid::Uuid) -> Result<bool, WalletError> {
    Ok(w.localstore
        .kv_read(KV_NAMESPACE, KV_LOCKED_SEND, &op.to_string())
        .await?
        .is_some())
}

async fn read_intent(w: &Wallet, op: &str) -> Result<Option<Intent>, WalletError> {
    let Some(raw) = w
        .localstore
        .kv_read(KV_NAMESPACE, KV_LOCKED_SEND, op)
        .await?
    else {
        return Ok(None);
    };
    serde_json::from_slice(&raw)
        .map(Some)
        .map_err(|e| WalletError::Inconsistent(format!("locked send {op}: unreadable intent: {e}")))
}

/// Asks the mint for the swap, or for the signatures of a swap it already did, and stores the
/// outcome. Every step may be repeated: the change is upserted, the inputs' removal is a no-op
/// the second time, the token is the same.
async fn finish(w: &Wallet, op: &str, intent: Intent) -> Result<Finished, WalletError> {
    let outputs = blinded(&intent)?;
    let mint = w.mint_connector();
    let request = SwapRequest::new(intent.inputs.clone(), outputs.clone());
    let signatures = match mint.post_swap(request).await {
        Ok(answer) => answer.signatures,
        Err(refused) => {
            // Already swapped (the inputs are spent), or never: the restore tells which.
            let restored = mint
                .post_restore(RestoreRequest {
                    outputs: outputs.clone(),
                })
                .await?;
            if restored.signatures.is_empty() {
                return never_swapped(w, op, &intent, refused).await;
            }
            in_request_order(&outputs, &restored.outputs, restored.signatures).ok_or_else(|| {
                WalletError::Inconsistent(format!(
                    "locked send {op}: the mint restored only some of its outputs"
                ))
            })?
        }
    };
    let keys = w.keyset(intent.keyset).await?.keys;
    let (to_lock, to_keep) = signatures.split_at(intent.locked.len().min(signatures.len()));
    let unblind = |sigs: &[BlindSignature], drawn: &[Output]| {
        construct_proofs(
            sigs.to_vec(),
            drawn.iter().map(|o| o.r.clone()).collect(),
            drawn.iter().map(|o| o.secret.clone()).collect(),
            &keys,
        )
    };
    let token_proofs = unblind(to_lock, &intent.locked).map_err(cdk::Error::from)?;
    let change = unblind(to_keep, &intent.change)
        .map_err(cdk::Error::from)?
        .into_iter()
        .map(|p| ProofInfo::new(p, w.mint_url.clone(), State::Unspent, w.unit.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    // The change joins the wallet and the inputs leave it before the token is stored: a cut in
    // between finishes the same way again.
    w.localstore
        .update_proofs(change, intent.inputs.ys().map_err(cdk::Error::from)?)
        .await?;
    // The wallet's history shows the payout as cdk's own sends do (a disputed trade's wallet is
    // archived with it). Keyed by the token's proofs, so writing it again changes nothing.
    let sent: u64 = token_proofs.iter().map(|p| u64::from(p.amount)).sum();
    let held: u64 = intent.inputs.iter().map(|p| u64::from(p.amount)).sum();
    let kept: u64 = intent.change.iter().map(|o| u64::from(o.amount)).sum();
    w.localstore
        .add_transaction(Transaction {
            mint_url: w.mint_url.clone(),
            direction: TransactionDirection::Outgoing,
            amount: Amount::from(sent),
            fee: Amount::from(held.saturating_sub(sent).saturating_sub(kept)),
            unit: w.unit.clone(),
            ys: token_proofs.ys().map_err(cdk::Error::from)?,
            timestamp: unix_time(),
            memo: None,
            metadata: HashMap::from([("operation".to_owned(), op.to_owned())]),
            quote_id: None,
            payment_request: None,
            payment_proof: None,
            payment_method: None,
            saga_id: None,
            status: TransactionStatus::Completed,
        })
        .await?;
    let token = Token::new(w.mint_url.clone(), token_proofs, None, w.unit.clone()).to_string();
    w.localstore
        .kv_write(KV_NAMESPACE, KV_SENT, op, token.as_bytes())
        .await?;
    forget(w, op).await?;
    Ok(Finished::Sent(token))
}

/// The mint holds no signature for any output of `op`. Inputs spent at the mint were spent by
/// something else: the send paid nothing and is dropped (with those inputs). Inputs unspent and
/// the swap refused for good: the inputs go back to the wallet and the refusal is returned.
/// Refused in a way that may not be final (a timeout, a 500): kept, to be asked again.
async fn never_swapped(
    w: &Wallet,
    op: &str,
    intent: &Intent,
    refused: cdk::Error,
) -> Result<Finished, WalletError> {
    // Drops the spent ones from the store itself.
    let states = w.check_proofs_spent(intent.inputs.clone()).await?;
    let spent: Vec<_> = states
        .iter()
        .filter(|s| s.state == State::Spent)
        .map(|s| s.y)
        .collect();
    if spent.is_empty() && !refused.is_definitive_failure() {
        return Err(refused.into());
    }
    let back: Vec<ProofInfo> = w
        .localstore
        .get_reserved_proofs(&operation_uuid(op)?)
        .await?
        .into_iter()
        .filter(|p| !spent.contains(&p.y))
        .map(|mut p| {
            p.state = State::Unspent;
            p.used_by_operation = None;
            p
        })
        .collect();
    w.localstore.update_proofs(back, spent.clone()).await?;
    forget(w, op).await?;
    if spent.is_empty() {
        return Err(refused.into());
    }
    tracing::warn!(
        operation = op,
        "a locked send's inputs were spent elsewhere before its swap; nothing was paid"
    );
    Ok(Finished::NotSent)
}

/// The outputs, blinded again from their secrets and blinding factors: the same messages the
/// first request carried.
fn blinded(intent: &Intent) -> Result<Vec<BlindedMessage>, WalletError> {
    intent
        .locked
        .iter()
        .chain(&intent.change)
        .map(|o| {
            let (b, _) =
                blind_message(&o.secret.to_bytes(), Some(o.r.clone())).map_err(cdk::Error::from)?;
            Ok(BlindedMessage::new(o.amount, intent.keyset, b))
        })
        .collect()
}

/// The restored signatures in the order of `requested`, if every output was restored.
fn in_request_order(
    requested: &[BlindedMessage],
    restored: &[BlindedMessage],
    signatures: Vec<BlindSignature>,
) -> Option<Vec<BlindSignature>> {
    if restored.len() != signatures.len() {
        return None;
    }
    let mut by_output: HashMap<_, _> = restored
        .iter()
        .map(|o| o.blinded_secret)
        .zip(signatures)
        .collect();
    requested
        .iter()
        .map(|o| by_output.remove(&o.blinded_secret))
        .collect()
}

async fn forget(w: &Wallet, op: &str) -> Result<(), WalletError> {
    w.localstore
        .kv_remove(KV_NAMESPACE, KV_LOCKED_SEND, op)
        .await?;
    Ok(())
}

fn operation_uuid(op: &str) -> Result<uuid::Uuid, WalletError> {
    uuid::Uuid::parse_str(op)
        .map_err(|_| WalletError::Inconsistent(format!("locked send {op}: not an operation id")))
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn keyset() -> Id {
        Id::from_str("009a1f293253e41e").expect("id")
    }

    fn message(n: u8) -> BlindedMessage {
        let key = SecretKey::from_slice(&[n; 32]).expect("key");
        BlindedMessage::new(Amount::from(u64::from(n)), keyset(), key.public_key())
    }

    fn signature(n: u8) -> BlindSignature {
        let key = SecretKey::from_slice(&[n; 32]).expect("key");
        BlindSignature {
            amount: Amount::from(u64::from(n)),
            keyset_id: keyset(),
            c: key.public_key(),
            dleq: None,
        }
    }

    #[test]
    fn restored_signatures_follow_the_request_order() {
        let requested = [message(1), message(2), message(3)];
        let restored = [message(3), message(1), message(2)];
        let ordered = in_request_order(
            &requested,
            &restored,
            vec![signature(3), signature(1), signature(2)],
        )
        .expect("all restored");
        assert_eq!(ordered, vec![signature(1), signature(2), signature(3)]);
    }

    #[test]
    fn a_partial_restore_is_not_taken() {
        let requested = [message(1), message(2)];
        assert_eq!(
            in_request_order(&requested, &[message(1)], vec![signature(1)]),
            None
        );
        assert_eq!(in_request_order(&requested, &[], vec![]), None);
    }
}
