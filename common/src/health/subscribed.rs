//! Which quotes this process' NUT-17 subscriptions at the mint cover. The worker's quote
//! notifier records them as it subscribes and lets go; a quote's watcher reads them to decide
//! how often to ask the mint itself: rarely while the mint will report a payment on its own,
//! at the base interval while nothing would (no notifier, or its websocket down).
//!
//! A quote counts as covered once its subscription was sent on a connection that is still
//! open. The mint answers a subscription with the quote's current state, so a payment made
//! before it was subscribed is reported too.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

/// The covered quotes; cheap to clone, all clones share them. Empty (nothing covered) until a
/// notifier records something.
#[derive(Debug, Clone, Default)]
pub struct Subscribed {
    quotes: Arc<RwLock<HashSet<String>>>,
}

impl Subscribed {
    /// Whether the mint will report a payment of `quote_id` to this process.
    pub fn covers(&self, quote_id: &str) -> bool {
        self.quotes
            .read()
            .map(|q| q.contains(quote_id))
            // A notifier that panicked mid-update covers nothing we can trust.
            .unwrap_or(false)
    }

    /// Replaces the covered quotes (the notifier's connections changed); returns how many.
    pub fn replace(&self, quotes: HashSet<String>) -> usize {
        let n = quotes.len();
        match self.quotes.write() {
            Ok(mut q) => *q = quotes,
            Err(poisoned) => *poisoned.into_inner() = quotes,
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_what_is_covered() {
        let a = Subscribed::default();
        let b = a.clone();
        assert!(!b.covers("q"));
        assert_eq!(a.replace(HashSet::from(["q".to_owned()])), 1);
        assert!(b.covers("q"));
        a.replace(HashSet::new());
        assert!(!b.covers("q"));
    }
}
