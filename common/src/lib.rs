//! Shared core of the OpenPleb backend: configuration and start-up, the pure domain (state
//! machine and money math), PostgreSQL access, job definitions and the per-session wallet
//! manager.

pub mod bootstrap;
pub mod config;
pub mod db;
pub mod desk;
pub mod domain;
pub mod failpoint;
pub mod health;
pub mod jobs;
pub mod keyring;
pub mod metrics;
pub mod mint;
pub mod notify;
pub mod price;
pub mod reputation;
pub mod telemetry;
pub mod trade;
pub mod wallet;
