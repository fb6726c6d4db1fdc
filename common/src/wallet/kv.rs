//! The keys under which this backend keeps its own records in a wallet file's KV store.
//!
//! Sends, their recovery and locked payouts all read and write the same records, so the names
//! live here, below all three, rather than in any one of them.

/// KV namespace for what this backend keeps in a wallet file.
pub(super) const KV_NAMESPACE: &str = "openpleb";
/// Tokens of confirmed sends, by operation id.
pub(super) const KV_SENT: &str = "sent";
