//! Ask for a treasury withdrawal (an admin, on the admin listener): a token P2PK-locked to a
//! key the admin gives, or a Lightning invoice. The api opens no wallet, so this only checks
//! the request against what PostgreSQL knows (the balance the workers last stored), records it
//! (REQUESTED) with the admin's action, and enqueues the worker's job, in one transaction. The
//! insert is the compare-and-set that keeps one withdrawal in flight: a second is refused while
//! the first is REQUESTED. The worker pays it (`worker/src/jobs/withdraw_treasury.rs`).

use std::str::FromStr;

use uuid::Uuid;

use super::TradeCtx;
use crate::db::admin_actions;
use crate::db::treasury::{self, Destination, Withdrawal};
use crate::domain::keys::XOnlyKey;
use crate::jobs::{self, EnqueueError, WithdrawTreasury};

/// Where the withdrawal goes, as the admin asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithdrawTo<'a> {
    /// A token of `sats` (the mint's fee comes out of them) locked to `pubkey` (x-only or
    /// compressed hex).
    Token {
        /// The key.
        pubkey: &'a str,
        /// Sats.
        sats: u64,
    },
    /// A bolt11 invoice with an amount.
    Invoice(&'a str),
}

/// Why a withdrawal was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum WithdrawError {
    /// The request is unusable; `code` is the stable error code.
    #[error("{field}: {message}")]
    Invalid {
        /// Stable error code.
        code: &'static str,
        /// The input field (wire name).
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// Another withdrawal is still in flight.
    #[error("withdrawal {0} is still in flight; ask again once it has ended")]
    InProgress(Uuid),
    /// More than the treasury held when a worker last looked.
    #[error("the treasury holds {balance} sats (as last read), less than the {asked} asked for")]
    OverBalance {
        /// The balance as last stored.
        balance: u64,
        /// What was asked.
        asked: u64,
    },
    /// PostgreSQL failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The job could not be enqueued.
    #[error(transparent)]
    Enqueue(#[from] EnqueueError),
}

fn invalid(code: &'static str, field: &'static str, message: impl Into<String>) -> WithdrawError {
    WithdrawError::Invalid {
        code,
        field,
        message: message.into(),
    }
}

/// A key a withdrawal token may be locked to: 64 hex characters (BIP-340 x-only) or 66
/// (compressed, `02`/`03` first). NUT-11 compares x-only keys, so a compressed key's parity does
/// not matter and both lock to whoever holds its secret.
pub fn parse_key(s: &str) -> Result<XOnlyKey, WithdrawError> {
    let s = s.trim().to_ascii_lowercase();
    let bad = || {
        invalid(
            "invalid_pubkey",
            "token.pubkey",
            "expected a secp256k1 public key: 64 hex characters (x-only) or 66 (compressed)",
        )
    };
    let x = match s.len() {
        64 => s,
        66 if s.starts_with("02") || s.starts_with("03") => {
            let key = cdk::nuts::PublicKey::from_hex(&s).map_err(|_| bad())?;
            key.x_only_public_key().to_string()
        }
        _ => return Err(bad()),
    };
    XOnlyKey::from_str(&x).map_err(|_| bad())
}

/// A bolt11 invoice's amount in sats, refusing what no melt can pay: not an invoice, no
/// amount, a fraction of a sat, expired.
pub fn invoice_sats(bolt11: &str) -> Result<u64, WithdrawError> {
    let invoice = cdk::Bolt11Invoice::from_str(bolt11.trim()).map_err(|e| {
        invalid(
            "invalid_invoice",
            "invoice",
            format!("not a bolt11 invoice: {e}"),
        )
    })?;
    let msat = invoice.amount_milli_satoshis().ok_or_else(|| {
        invalid(
            "invoice_without_amount",
            "invoice",
            "the invoice has no amount",
        )
    })?;
    if msat == 0 || msat % 1000 != 0 {
        return Err(invalid(
            "invalid_invoice",
            "invoice",
            "the invoice's amount must be a whole number of sats",
        ));
    }
    if invoice.is_expired() {
        return Err(invalid(
            "invoice_expired",
            "invoice",
            "the invoice has expired",
        ));
    }
    Ok(msat / 1000)
}

/// Records the withdrawal `admin` asked for and enqueues its job; returns the row.
pub async fn request(
    ctx: &TradeCtx,
    admin: &str,
    to: WithdrawTo<'_>,
) -> Result<Withdrawal, WithdrawError> {
    let dest = match to {
        WithdrawTo::Token { pubkey, sats } => {
            let key = parse_key(pubkey)?;
            if sats == 0 {
                return Err(invalid(
                    "invalid_amount",
                    "token.amountSats",
                    "must be at least 1",
                ));
            }
            Destination::Token {
                pubkey: key.to_string(),
                sats,
            }
        }
        WithdrawTo::Invoice(bolt11) => Destination::Invoice {
            sats: invoice_sats(bolt11)?,
            bolt11: bolt11.trim().to_owned(),
        },
    };
    let asked = match &dest {
        Destination::Token { sats, .. } | Destination::Invoice { sats, .. } => *sats,
    };
    let balance = u64::try_from(treasury::get(&ctx.pool).await?.balance_sats).unwrap_or(0);
    if asked > balance {
        return Err(WithdrawError::OverBalance { balance, asked });
    }
    let id = Uuid::new_v4();
    let mut tx = ctx.pool.begin().await?;
    let Some(row) = treasury::insert(&mut tx, id, admin, &dest).await? else {
        drop(tx);
        let current = treasury::in_flight(&ctx.pool).await?.map_or(id, |w| w.id);
        return Err(WithdrawError::InProgress(current));
    };
    // Names the destination's kind and amount, never a token.
    let note = match &dest {
        Destination::Token { pubkey, sats } => format!("token of {sats} sats locked to {pubkey}"),
        Destination::Invoice { sats, .. } => format!("invoice of {sats} sats"),
    };
    admin_actions::record(
        &mut tx,
        admin,
        "treasury_withdraw",
        &id.to_string(),
        Some(&note),
    )
    .await?;
    jobs::enqueue(&mut tx, &WithdrawTreasury { withdrawal_id: id }).await?;
    tx.commit().await?;
    Ok(row)
}

#[cfg(test)]
mod tests {
    use cdk::nuts::SecretKey;

    use super::*;

    #[test]
    fn x_only_and_compressed_keys_lock_to_the_same_x() {
        let sk = SecretKey::generate();
        let x = sk.public_key().x_only_public_key().to_string();
        let compressed = sk.public_key().to_hex();
        assert_eq!(compressed.len(), 66);
        assert_eq!(parse_key(&x).expect("x-only").to_string(), x);
        assert_eq!(parse_key(&compressed).expect("compressed").to_string(), x);
        assert_eq!(
            parse_key(&compressed.to_ascii_uppercase())
                .expect("upper case")
                .to_string(),
            x
        );
    }

    #[test]
    fn other_keys_are_refused_with_one_code() {
        let code = |s: &str| match parse_key(s) {
            Err(WithdrawError::Invalid { code, .. }) => code,
            other => panic!("{s}: {other:?}"),
        };
        assert_eq!(code(""), "invalid_pubkey");
        assert_eq!(code(&"zz".repeat(32)), "invalid_pubkey");
        assert_eq!(code(&format!("04{}", "11".repeat(32))), "invalid_pubkey");
        // 0 is not the x of a point on the curve.
        assert_eq!(code(&"00".repeat(32)), "invalid_pubkey");
    }

    #[test]
    fn invoices_are_checked_before_anything_is_recorded() {
        let code = |s: &str| match invoice_sats(s) {
            Err(WithdrawError::Invalid { code, .. }) => code,
            other => panic!("{s}: {other:?}"),
        };
        assert_eq!(code("lnbc1nonsense"), "invalid_invoice");
        assert_eq!(code("not an invoice"), "invalid_invoice");
    }
}
