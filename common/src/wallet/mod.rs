//! Per-session ecash wallets: the cdk storage adapter, the file layout, and the manager.

pub mod layout;
pub mod manager;
pub mod service_auth;
pub mod store;

pub use layout::{WalletId, WalletLayout};
pub use manager::{
    Balances, CreatedQuote, Funds, MintOutcome, Reconciled, RecordOperation, SentToken,
    WalletError, WalletManager, WalletManagerConfig,
};
