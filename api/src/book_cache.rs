//! The anonymous book, pre-serialised: `GET /offers` without a session answers from here.
//!
//! The book changes rarely next to how often it is read, and building a
//! 100-offer page costs a query plus most of a millisecond of JSON work. So a page is kept,
//! as the bytes sent, under its query string, and dropped when the book changes: every move
//! into or out of INVOICE_PAID (the only status an anonymous page shows) arrives through the
//! api's offer-change listener ([`crate::events::Hub`]) and clears the whole cache.
//!
//! Correctness does not rest on timing:
//! - A page is stored only if no change arrived while it was being built (a generation
//!   counter read before the query), so a page read before a change never outlives it.
//! - While the listener is down or has just reconnected (notifications may have been missed),
//!   the [`Hub::epoch`] differs from the one the page was built under, and the page is not
//!   served.
//! - `BOOK_CACHE_MS` bounds a page's age in any case (a change whose notification is lost
//!   without the connection dropping); 0 turns the cache off.
//!
//! Pages with a session are never cached: they include that session's own offers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use openpleb_common::domain::offer::OfferStatus;
use poem::IntoResponse;
use poem_openapi::payload::Payload;
use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses, MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use poem_openapi::ApiResponse;
use tokio::sync::broadcast::error::RecvError;

use crate::events::{Hub, OfferChange};

/// Most pages kept: query strings are the client's choice, so the map is bounded; when it is
/// full it starts over.
const MAX_PAGES: usize = 256;

/// What a page was built under; it may be stored and served only while both still hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    generation: u64,
    epoch: u64,
}

struct Page {
    stamp: Stamp,
    built: Instant,
    body: Bytes,
}

/// The cache; one per api process, shared by its requests.
pub struct BookCache {
    hub: Arc<Hub>,
    max_age: Duration,
    generation: AtomicU64,
    pages: Mutex<HashMap<String, Page>>,
}

impl std::fmt::Debug for BookCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BookCache")
            .field("max_age", &self.max_age)
            .field("generation", &self.generation.load(Ordering::SeqCst))
            .finish()
    }
}

/// Whether `change` can alter an anonymous page.
fn touches_book(change: &OfferChange) -> bool {
    change.to == OfferStatus::InvoicePaid || change.from == Some(OfferStatus::InvoicePaid)
}

impl BookCache {
    /// A cache cleared by `hub`'s changes, serving pages at most `max_age` old (zero: never).
    pub fn start(hub: Arc<Hub>, max_age: Duration) -> Arc<Self> {
        let cache = Arc::new(Self {
            hub: hub.clone(),
            max_age,
            generation: AtomicU64::new(0),
            pages: Mutex::default(),
        });
        if !max_age.is_zero() {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(invalidate_on_changes(
                    Arc::downgrade(&cache),
                    hub.subscribe(),
                ));
            }
        }
        cache
    }

    /// Whether the cache is in use.
    pub fn enabled(&self) -> bool {
        !self.max_age.is_zero()
    }

    /// Read this before building a page, and hand it to [`BookCache::put`] with the page.
    pub fn stamp(&self) -> Stamp {
        Stamp {
            generation: self.generation.load(Ordering::SeqCst),
            epoch: self.hub.epoch(),
        }
    }

    /// The page for `query`, if one is stored and still good.
    pub fn get(&self, query: &str) -> Option<Bytes> {
        if !self.enabled() {
            return None;
        }
        let now = self.stamp();
        // An even epoch: the listener is down, changes are not seen.
        if now.epoch.is_multiple_of(2) {
            return None;
        }
        let pages = self.pages.lock().unwrap_or_else(|e| e.into_inner());
        pages
            .get(query)
            .filter(|p| p.stamp == now && p.built.elapsed() < self.max_age)
            .map(|p| p.body.clone())
    }

    /// Stores `body` for `query` unless the book changed since `stamp` was read.
    pub fn put(&self, query: &str, stamp: Stamp, body: Bytes) {
        if !self.enabled() || stamp.epoch.is_multiple_of(2) {
            return;
        }
        let mut pages = self.pages.lock().unwrap_or_else(|e| e.into_inner());
        // Checked under the lock `clear` takes, so a change cannot slip in between.
        if self.stamp() != stamp {
            return;
        }
        if pages.len() >= MAX_PAGES && !pages.contains_key(query) {
            pages.clear();
        }
        pages.insert(
            query.to_owned(),
            Page {
                stamp,
                built: Instant::now(),
                body,
            },
        );
    }

    /// Drops every page (the book changed).
    pub fn clear(&self) {
        let mut pages = self.pages.lock().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::SeqCst);
        pages.clear();
    }
}

/// A JSON body of type `T` already serialised: documented exactly as `Json<T>` is (the
/// OpenAPI document does not change), sent as the bytes it holds.
pub struct PreJson<T> {
    body: Bytes,
    _type: std::marker::PhantomData<fn() -> T>,
}

impl<T> PreJson<T> {
    /// `body` must be `T` as JSON.
    pub fn new(body: Bytes) -> Self {
        Self {
            body,
            _type: std::marker::PhantomData,
        }
    }
}

impl<T: Type> Payload for PreJson<T> {
    const CONTENT_TYPE: &'static str = "application/json; charset=utf-8";

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Send> IntoResponse for PreJson<T> {
    fn into_response(self) -> poem::Response {
        poem::Response::builder()
            .content_type("application/json; charset=utf-8")
            .body(self.body)
    }
}

impl<T: Type> ApiResponse for PreJson<T> {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "",
                status: Some(200),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: Self::CONTENT_TYPE,
                    schema: Self::schema_ref(),
                }],
                headers: vec![],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

async fn invalidate_on_changes(
    cache: std::sync::Weak<BookCache>,
    mut changes: tokio::sync::broadcast::Receiver<OfferChange>,
) {
    loop {
        let event = changes.recv().await;
        let Some(cache) = cache.upgrade() else { return };
        match event {
            Ok(change) if touches_book(&change) => cache.clear(),
            Ok(_) => {}
            // Changes were dropped unseen: any of them may have touched the book.
            Err(RecvError::Lagged(_)) => cache.clear(),
            Err(RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn hub() -> Arc<Hub> {
        Hub::start(
            sqlx::postgres::PgPoolOptions::new()
                .connect_lazy("postgres://127.0.0.1:1/none")
                .expect("lazy pool"),
        )
    }

    #[test]
    fn only_moves_into_or_out_of_the_book_touch_it() {
        let change = |from, to| OfferChange {
            offer_id: Uuid::new_v4(),
            from,
            to,
            parties: None,
        };
        assert!(touches_book(&change(
            Some(OfferStatus::Created),
            OfferStatus::InvoicePaid
        )));
        assert!(touches_book(&change(
            Some(OfferStatus::InvoicePaid),
            OfferStatus::TakerBondPaid
        )));
        assert!(!touches_book(&change(None, OfferStatus::Created)));
        assert!(!touches_book(&change(
            Some(OfferStatus::TakerBondPaid),
            OfferStatus::ReceiptSubmitted
        )));
    }

    #[tokio::test]
    async fn nothing_is_served_while_the_listener_is_down() {
        // The hub's database does not exist: its listener never listens (epoch stays even).
        let cache = BookCache::start(hub(), Duration::from_secs(60));
        let stamp = cache.stamp();
        cache.put("limit=100", stamp, Bytes::from_static(b"[]"));
        assert_eq!(cache.get("limit=100"), None);
    }
}
