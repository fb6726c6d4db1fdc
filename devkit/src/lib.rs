//! Development and test support: a real cdk mint in process, and helpers that give tests a
//! PostgreSQL database and a wallet manager wired the way production wires them.
//!
//! Nothing here is a mock: the mint is cdk's own, served over HTTP on loopback, and the
//! database is a real PostgreSQL cluster (`DATABASE_URL`).

pub mod mint;

pub use mint::{DevMint, DevMintOptions};
