//! The pubkey reveal (DESIGN.md section 3): a party that marks an issue or disputes proves its
//! registered key by a BIP-340 signature over
//! `SHA-256("openpleb-dispute:" ‖ offer id ‖ ":" ‖ role ‖ ":" ‖ timestamp)`. The key must belong
//! to a registered, active user. A reveal is the only record that links a registered user to a
//! trade: it is counted in the key's dispute statistics, and the party's payouts of the offer
//! are locked to the revealed key.

use uuid::Uuid;

use super::{TradeCtx, TradeError};
use crate::db::users;
use crate::domain::dispute::reveal_digest;
use crate::domain::keys::XOnlyKey;
use crate::domain::registration::{check_timestamp, verify_signature};
use crate::domain::role::Role;

/// A signed reveal, as the client sends it.
#[derive(Debug, Clone)]
pub struct Reveal {
    /// The registered key (x-only, lowercase hex).
    pub pubkey: String,
    /// Milliseconds since the epoch, within 60 s of the server's clock.
    pub timestamp: i64,
    /// The BIP-340 signature (hex).
    pub signature: String,
}

/// Checks `reveal` for `offer` as `role`: the registered key it proves.
pub async fn check(
    ctx: &TradeCtx,
    offer: Uuid,
    role: Role,
    reveal: &Reveal,
) -> Result<XOnlyKey, TradeError> {
    let key: XOnlyKey = reveal
        .pubkey
        .parse()
        .map_err(|e| TradeError::invalid("malformed_pubkey", "reveal.pubkey", format!("{e}")))?;
    if key.to_string() != reveal.pubkey {
        return Err(TradeError::invalid(
            "malformed_pubkey",
            "reveal.pubkey",
            "must be lowercase hex",
        ));
    }
    check_timestamp(reveal.timestamp, ctx.clock.now().timestamp_millis())
        .map_err(|e| TradeError::invalid("stale_timestamp", "reveal.timestamp", e.to_string()))?;
    verify_signature(
        &key,
        reveal_digest(offer, role, reveal.timestamp),
        &reveal.signature,
    )
    .map_err(|e| TradeError::invalid("invalid_signature", "reveal.signature", e.to_string()))?;
    match users::find_by_pubkey(&ctx.pool, &reveal.pubkey).await? {
        Some(u) if u.status == "active" => Ok(key),
        Some(_) => Err(TradeError::RevealRefused("this key is deactivated")),
        None => Err(TradeError::RevealRefused("this key is not registered")),
    }
}
