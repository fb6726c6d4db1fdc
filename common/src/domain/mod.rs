//! The pure domain: no I/O, no async. State machine rules, money math, parsed keys.

pub mod keys;
pub mod money;
pub mod registration;
