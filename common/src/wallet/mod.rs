//! Per-session ecash wallets: the cdk storage adapter and (later) the wallet manager.

pub mod store;
