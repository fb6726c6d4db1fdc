//! Per-session ecash wallets: the cdk storage adapter, the file layout, and the manager.
//!
//! The manager is split by concern: `manager` (the operations callers use), `slots` (the
//! cache of open wallets, leases, and the task-and-lock path every operation takes), `fence`
//! (each open wallet's writes fenced by its lease's generation), `fees`
//! (the pure search that fits a send and its mint fee), `archive` (copies of wallet files kept
//! after deletion), `reconcile` (settling crash leftovers with the mint), `receipts` (whether a
//! wallet took a given token), `quote_lock` (quotes made without opening the wallet), `locked` (the token
//! of a locked payout send cut after the mint's swap) and `error` (what failed, and what a
//! client can do about it).

pub mod archive;
mod blank;
pub mod error;
pub mod fees;
pub mod fence;
pub mod layout;
pub mod locked;
pub mod manager;
pub mod quote_lock;
pub mod receipts;
pub mod reconcile;
pub mod service_auth;
mod slots;
pub mod store;
pub mod treasury;

pub use error::{WalletError, WalletErrorKind};
pub use layout::{WalletId, WalletLayout};
pub use manager::{
    Balances, CreatedQuote, Funds, MintOutcome, RecordOperation, SentToken, WalletManager,
    WalletManagerConfig,
};
pub use quote_lock::{LockedQuote, QuoteLock};
pub use receipts::Receipt;
pub use reconcile::Reconciled;
