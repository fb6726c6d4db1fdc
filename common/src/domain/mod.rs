//! The pure domain: no I/O, no async. State machine rules and money math as plain functions.

pub mod money;
