//! Live updates as server-sent events.
//!
//! - `GET /events/book` (public): `offer.listed` when an offer enters the book (INVOICE_PAID)
//!   and `offer.unlisted` when it leaves it; data `{"offerId"}` only, nothing about the parties.
//! - `GET /events/session` (a session's BAT): `offer.status` for every move of that session's
//!   own offers (as maker or taker); data `{"offerId","status"}`. It ends when the session
//!   does: at its expiry (renewal extends it), at a logout in this process at once, at a logout
//!   elsewhere within [`SESSION_CHECK`].
//!
//! Open streams are capped per client address (`EVENTS_MAX_PER_IP`, both streams) and per
//! session (`EVENTS_MAX_PER_SESSION`): 429 `too_many_streams`.

use std::time::Duration;

use futures::stream::{BoxStream, StreamExt};
use openpleb_common::db::{offers, sessions};
use openpleb_common::domain::offer::OfferStatus;
use poem::http::StatusCode;
use poem::web::sse::Event;
use poem::web::Data;
use poem::Request;
use poem_openapi::payload::EventStream;
use poem_openapi::types::ToJSON;
use poem_openapi::{Object, OpenApi};
use tokio_stream::wrappers::BroadcastStream;
use uuid::Uuid;

use super::ApiTags;
use crate::auth::SessionAuth;
use crate::error::{ApiError, ApiResult};
use crate::events::StreamSlot;
use crate::AppState;

/// A book change.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct BookEvent {
    /// `offer.listed` or `offer.unlisted`.
    #[oai(skip)]
    pub kind: &'static str,
    /// The offer.
    pub offer_id: Uuid,
}

/// A move of one of the session's offers.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct StatusEvent {
    /// The offer.
    pub offer_id: Uuid,
    /// Its new status.
    pub status: String,
}

const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// How often a session stream re-reads its session, to end after a logout in another process
/// whose notice was missed (notices end it at once otherwise).
pub const SESSION_CHECK: Duration = Duration::from_secs(10);

type Stream<T> = EventStream<BoxStream<'static, T>>;

/// A slot for one more stream of this client (and session), or 429 `too_many_streams`.
fn slot(state: &AppState, req: &Request, session: Option<uuid::Uuid>) -> ApiResult<StreamSlot> {
    let api = &state.ctx.config.api;
    let mut limits = vec![(
        format!("ip:{}", state.rate_limits.client_ip(req)),
        api.events_max_per_ip,
    )];
    if let Some(s) = session {
        limits.push((format!("s:{s}"), api.events_max_per_session));
    }
    state.events.open_slot(&limits).ok_or_else(|| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_streams",
            "too many event streams open; close one first",
        )
        .into()
    })
}

/// Resolves when `session` has ended: logged out (here, or announced by another process),
/// past its expiry, or found ended by a periodic re-read.
/// `ended_here` is subscribed by the caller, when the stream opens: this future first runs when
/// the stream is first read, and a logout before that must not be missed.
async fn session_over(
    state: AppState,
    session: sessions::Session,
    mut ended_here: tokio::sync::broadcast::Receiver<uuid::Uuid>,
) {
    let mut expires_at = session.expires_at;
    loop {
        let until_expiry = (expires_at - chrono::Utc::now())
            .to_std()
            .unwrap_or_default();
        tokio::select! {
            got = ended_here.recv() => match got {
                Ok(id) if id == session.id => return,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
            () = tokio::time::sleep(until_expiry.min(SESSION_CHECK)) => {
                match sessions::get(&state.ctx.pool, session.id).await {
                    Ok(Some(s)) if s.ended_at.is_none() && s.expires_at > chrono::Utc::now() => {
                        // Renewal moves the expiry.
                        expires_at = s.expires_at;
                    }
                    Ok(_) => return,
                    // The database is away: keep the stream, look again next time.
                    Err(e) => tracing::warn!(error = %e, "session check of an event stream failed"),
                }
            }
        }
    }
}

/// Event streams.
#[derive(Debug)]
pub struct EventsApi;

#[OpenApi(tag = "ApiTags::Events")]
impl EventsApi {
    /// Book changes (server-sent events)
    ///
    /// Event `offer.listed` when an offer enters the book, `offer.unlisted` when it leaves it;
    /// data `{"offerId": "…"}`. 429 `too_many_streams` beyond `EVENTS_MAX_PER_IP` open streams
    /// per client address.
    #[oai(path = "/events/book", method = "get", operation_id = "bookEvents")]
    async fn book(&self, state: Data<&AppState>, req: &Request) -> ApiResult<Stream<BookEvent>> {
        let slot = slot(&state, req, None)?;
        let stream = BroadcastStream::new(state.events.subscribe())
            .filter_map(move |change| {
                // The slot lives as long as the stream.
                let _slot = &slot;
                let event = change.ok().and_then(|c| {
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
                });
                async move { event }
            })
            .boxed();
        Ok(EventStream::new(stream)
            .keep_alive(KEEP_ALIVE)
            .to_event(|e| Event::message(e.to_json_string()).event_type(e.kind)))
    }

    /// This session's trade events (server-sent events)
    ///
    /// Event `offer.status` with data `{"offerId": "…", "status": "…"}` for every move of an
    /// offer this session makes or takes. The stream ends when the session ends (expiry or
    /// logout). 429 `too_many_streams` beyond `EVENTS_MAX_PER_SESSION` open streams per session
    /// or `EVENTS_MAX_PER_IP` per client address.
    #[oai(
        path = "/events/session",
        method = "get",
        operation_id = "sessionEvents"
    )]
    async fn session(
        &self,
        auth: SessionAuth,
        state: Data<&AppState>,
        req: &Request,
    ) -> ApiResult<Stream<StatusEvent>> {
        let session = auth.0.id;
        let slot = slot(&state, req, Some(session))?;
        let pool = state.ctx.pool.clone();
        let over = session_over(state.clone(), auth.0.clone(), state.events.ended_sessions());
        let stream = BroadcastStream::new(state.events.subscribe())
            .take_until(over)
            .filter_map(move |change| {
                // The slot lives as long as the stream.
                let _slot = &slot;
                let pool = pool.clone();
                async move {
                    let c = change.ok()?;
                    // The change names the offer's parties: no query per event. Only a payload
                    // from an older process (no parties) makes the stream read the offer.
                    let mine = match c.parties {
                        Some(p) => p.include(session),
                        None => {
                            let offer = offers::get(&pool, c.offer_id).await.ok()??;
                            offer.maker_session_id == session
                                || offer.taker_session_id == Some(session)
                        }
                    };
                    mine.then(|| StatusEvent {
                        offer_id: c.offer_id,
                        status: c.to.as_str().to_owned(),
                    })
                }
            })
            .boxed();
        Ok(EventStream::new(stream)
            .keep_alive(KEEP_ALIVE)
            .to_event(|e| Event::message(e.to_json_string()).event_type("offer.status")))
    }
}
