//! Failpoints: named points where a test makes a code path stop as if the process had died
//! there, to check that every cut ends whole after the reconciliation. Nothing arms them in
//! production: a default [`Cuts`] holds no registry and every check is one branch.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// The armed failpoints of one context (tests only arm them).
#[derive(Debug, Clone, Default)]
pub struct Cuts(Option<Arc<Mutex<HashSet<&'static str>>>>);

impl Cuts {
    /// A registry tests can arm.
    pub fn armable() -> Self {
        Self(Some(Arc::default()))
    }

    /// Arms `point`: every path reaching it stops there until disarmed.
    pub fn arm(&self, point: &'static str) {
        if let Some(set) = &self.0 {
            match set.lock() {
                Ok(mut s) => s.insert(point),
                Err(poisoned) => poisoned.into_inner().insert(point),
            };
        }
    }

    /// Disarms every point.
    pub fn clear(&self) {
        if let Some(set) = &self.0 {
            match set.lock() {
                Ok(mut s) => s.clear(),
                Err(poisoned) => poisoned.into_inner().clear(),
            }
        }
    }

    /// Whether the path must stop at `point`.
    pub fn hit(&self, point: &'static str) -> bool {
        match &self.0 {
            None => false,
            Some(set) => match set.lock() {
                Ok(s) => s.contains(point),
                Err(poisoned) => poisoned.into_inner().contains(point),
            },
        }
    }
}
