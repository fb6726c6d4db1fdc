//! Per-session ecash wallets: the cdk storage adapter, the file layout, and the manager.
//!
//! The manager is split by concern: `manager` (the operations callers use), `slots` (the
//! cache of open wallets, leases, and the task-and-lock path every operation takes),
//! `opening` (how a file becomes an open, fenced, recovered cdk wallet), `fence` (each open
//! wallet's writes fenced by its lease's generation), `fees` (the pure search that fits a send
//! and its mint fee), `archive` (copies of wallet files kept after deletion), `recovery`
//! (settling crash leftovers of one open wallet with the mint) and `reconcile` (the same on
//! request, reported), `receipts` (whether a wallet took a given token), `own_issue` (whether
//! a quote the mint reports issued was issued to this wallet), `quote_lock` (quotes made
//! without opening the wallet), `locked` (the token of a locked payout send cut after the
//! mint's swap), `kv` (the names of this backend's records in a wallet file), `settings` and
//! `error` (what failed, and what a client can do about it), `melt` (paying an invoice once per
//! quote), `treasury` (the treasury's keys and what its sweep asks).
//!
//! Dependencies point one way, downwards: `quote_lock`, `receipts`, `treasury`, `melt` and
//! `reconcile` add operations to the manager; `manager` and `quote_lock` use `own_issue`;
//! `manager` uses `slots`; `slots` uses `opening`; `opening`
//! uses `recovery` and the store; `recovery` uses `locked`; everything may use `kv`,
//! `settings`, `layout` and `error`. `scripts/import-cycles` fails the tests on a loop.

pub mod archive;
mod blank;
pub mod error;
pub mod fees;
pub mod fence;
mod kv;
pub mod layout;
pub mod locked;
pub mod manager;
pub mod melt;
mod opening;
mod own_issue;
pub mod quote_lock;
pub mod receipts;
pub mod reconcile;
mod recovery;
pub mod service_auth;
mod settings;
mod slots;
pub mod store;
pub mod treasury;

pub use error::{WalletError, WalletErrorKind};
pub use layout::{WalletId, WalletLayout};
pub use manager::{
    Balances, CreatedQuote, Funds, MintOutcome, RecordOperation, SentToken, WalletManager,
};
pub use melt::{MeltQuoted, Melted};
pub use quote_lock::QuoteLock;
pub use receipts::Receipt;
pub use reconcile::Reconciled;
pub use settings::WalletManagerConfig;
