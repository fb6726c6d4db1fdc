//! Scenario builders: a trade's steps, its parties and the checks it ends with, written once
//! over a [`Transport`] so that the api tests (in process), the bench (in process) and a stack
//! over real HTTP play the same steps.
//!
//! ```ignore
//! let trade = Trade::new(&h).maker(&maker).fiat(5_000).bond_paid().receipt().await?;
//! trade.complete().await?;
//! trade.taker_redeems(s + tf + tb).await?;
//! ```

pub mod check;
pub mod http;
pub mod in_process;
pub mod party;
pub mod trade;
pub mod transport;
pub mod wait;

pub use check::redeems;
pub use party::{party, payout_key, provider, sessions, Party};
pub use trade::{Amounts, Plan, Stage, Trade};
pub use transport::{Auth, Body, Call, Method, Reply, Transport, Upload, PNG};
