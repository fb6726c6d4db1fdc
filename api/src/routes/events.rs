//! Live updates as server-sent events.
//!
//! - `GET /events/book` (public): `offer.listed` when an offer enters the book (INVOICE_PAID)
//!   and `offer.unlisted` when it leaves it; data `{"offerId"}` only, nothing about the parties.
//! - `GET /events/session` (a session's BAT): `offer.status` for every move of that session's
//!   own offers (as maker or taker); data `{"offerId","status"}`.

use std::time::Duration;

use futures::stream::{BoxStream, StreamExt};
use openpleb_common::db::offers;
use openpleb_common::domain::offer::OfferStatus;
use poem::web::sse::Event;
use poem::web::Data;
use poem_openapi::payload::EventStream;
use poem_openapi::types::ToJSON;
use poem_openapi::{Object, OpenApi};
use tokio_stream::wrappers::BroadcastStream;
use uuid::Uuid;

use super::ApiTags;
use crate::auth::SessionAuth;
use crate::AppState;

/// A book change.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct BookEvent {
    /// `offer.listed` or `offer.unlisted`.
    #[oai(skip)]
    pub kind: &'static str,
    /// The offer.
    pub offer_id: Uuid,
}

/// A move of one of the session's offers.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase")]
pub struct StatusEvent {
    /// The offer.
    pub offer_id: Uuid,
    /// Its new status.
    pub status: String,
}

const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Event streams.
#[derive(Debug)]
pub struct EventsApi;

#[OpenApi(tag = "ApiTags::Events")]
impl EventsApi {
    /// Book changes (server-sent events)
    ///
    /// Event `offer.listed` when an offer enters the book, `offer.unlisted` when it leaves it;
    /// data `{"offerId": "…"}`.
    #[oai(path = "/events/book", method = "get", operation_id = "bookEvents")]
    async fn book(&self, state: Data<&AppState>) -> EventStream<BoxStream<'static, BookEvent>> {
        let stream = BroadcastStream::new(state.events.subscribe())
            .filter_map(|change| async move {
                let c = change.ok()?;
                let listed = c.to == OfferStatus::InvoicePaid;
                let was_listed = c.from == Some(OfferStatus::InvoicePaid);
                match (was_listed, listed) {
                    (false, true) => Some(BookEvent {
                        kind: "offer.listed",
                        offer_id: c.offer_id,
                    }),
                    (true, false) => Some(BookEvent {
                        kind: "offer.unlisted",
                        offer_id: c.offer_id,
                    }),
                    _ => None,
                }
            })
            .boxed();
        EventStream::new(stream)
            .keep_alive(KEEP_ALIVE)
            .to_event(|e| Event::message(e.to_json_string()).event_type(e.kind))
    }

    /// This session's trade events (server-sent events)
    ///
    /// Event `offer.status` with data `{"offerId": "…", "status": "…"}` for every move of an
    /// offer this session makes or takes.
    #[oai(
        path = "/events/session",
        method = "get",
        operation_id = "sessionEvents"
    )]
    async fn session(
        &self,
        auth: SessionAuth,
        state: Data<&AppState>,
    ) -> EventStream<BoxStream<'static, StatusEvent>> {
        let session = auth.0.id;
        let pool = state.ctx.pool.clone();
        let stream = BroadcastStream::new(state.events.subscribe())
            .filter_map(move |change| {
                let pool = pool.clone();
                async move {
                    let c = change.ok()?;
                    let offer = offers::get(&pool, c.offer_id).await.ok()??;
                    let mine = offer.maker_session_id == session
                        || offer.taker_session_id == Some(session);
                    mine.then(|| StatusEvent {
                        offer_id: c.offer_id,
                        status: c.to.as_str().to_owned(),
                    })
                }
            })
            .boxed();
        EventStream::new(stream)
            .keep_alive(KEEP_ALIVE)
            .to_event(|e| Event::message(e.to_json_string()).event_type("offer.status"))
    }
}
