//! Live updates: one PostgreSQL `LISTEN` per api process, fanned out to every open stream.
//!
//! Whichever process (api or worker) moves an offer sends a `NOTIFY` in the same transaction,
//! so every api process sees every committed change, in commit order. Each change names the
//! offer's sessions, so a session's stream keeps to its own offers without a query per event.
//!
//! Open streams are counted per client address and per session ([`Hub::open_slot`]), so one
//! client cannot hold an unbounded number of connections and fan-out work;
//! a slot is given back when its stream is dropped. Sessions that log out here are announced
//! to their streams at once ([`Hub::session_ended`]).
//!
//! The same connection listens for sessions that end or move onto a new BAT in any process
//! ([`SessionNotice`]): the session cache forgets them ([`crate::session_cache`]) and a logout
//! ends the session's streams here too.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openpleb_common::db::offers::EVENTS_CHANNEL;
use openpleb_common::db::sessions::SESSIONS_CHANNEL;
use openpleb_common::domain::offer::OfferStatus;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::broadcast;
use uuid::Uuid;

/// One committed move of an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferChange {
    /// The offer.
    pub offer_id: Uuid,
    /// Where it was (`None` for a new offer).
    pub from: Option<OfferStatus>,
    /// Where it is.
    pub to: OfferStatus,
    /// Its parties after the move, `None` when the sender did not say (an older process).
    pub parties: Option<Parties>,
}

/// An offer's sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parties {
    /// The maker's session.
    pub maker: Uuid,
    /// The taker's session, while claimed.
    pub taker: Option<Uuid>,
}

impl Parties {
    /// Whether `session` is one of them.
    pub fn include(&self, session: Uuid) -> bool {
        self.maker == session || self.taker == Some(session)
    }
}

impl OfferChange {
    fn parse(payload: &str) -> Option<Self> {
        let mut parts = payload.split(':');
        let offer_id = parts.next()?.parse().ok()?;
        let from = match parts.next()? {
            "-" => None,
            s => Some(s.parse().ok()?),
        };
        let to = parts.next()?.parse().ok()?;
        let parties = match (parts.next(), parts.next()) {
            (Some(maker), Some(taker)) => Some(Parties {
                maker: maker.parse().ok()?,
                taker: match taker {
                    "-" => None,
                    t => Some(t.parse().ok()?),
                },
            }),
            _ => None,
        };
        Some(Self {
            offer_id,
            from,
            to,
            parties,
        })
    }
}

/// A session that changed in some api process, as announced on its `NOTIFY` channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionNotice {
    /// Logged out.
    Ended(Uuid),
    /// Moved onto a new BAT: the old one no longer authenticates it.
    Renewed(Uuid),
}

impl SessionNotice {
    /// The session.
    pub fn session(&self) -> Uuid {
        match *self {
            Self::Ended(id) | Self::Renewed(id) => id,
        }
    }

    fn parse(payload: &str) -> Option<Self> {
        let (kind, id) = payload.split_once(':')?;
        let id = id.parse().ok()?;
        match kind {
            "ended" => Some(Self::Ended(id)),
            "renewed" => Some(Self::Renewed(id)),
            _ => None,
        }
    }
}

/// The fan-out.
#[derive(Debug, Clone)]
pub struct Hub {
    tx: broadcast::Sender<OfferChange>,
    ended: broadcast::Sender<Uuid>,
    sessions: broadcast::Sender<SessionNotice>,
    open: Arc<Mutex<HashMap<String, usize>>>,
    /// Counts the listener's connections and losses: odd while `LISTEN` is active, even while
    /// it is down. A change of value means changes may have been missed in between.
    epoch: Arc<AtomicU64>,
}

/// One open stream's place in the counts; dropping it (with the stream) gives it back.
#[derive(Debug)]
pub struct StreamSlot {
    keys: Vec<String>,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        for key in &self.keys {
            if let Some(n) = open.get_mut(key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    open.remove(key);
                }
            }
        }
    }
}

impl Hub {
    /// A hub with nothing listening yet, its epoch at `epoch`.
    fn new(epoch: u64) -> Self {
        Self {
            tx: broadcast::channel(1024).0,
            ended: broadcast::channel(256).0,
            sessions: broadcast::channel(1024).0,
            open: Arc::default(),
            epoch: Arc::new(AtomicU64::new(epoch)),
        }
    }

    /// Starts listening (reconnecting after errors) on `pool`.
    pub fn start(pool: PgPool) -> Arc<Self> {
        let hub = Arc::new(Self::new(0));
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(listen(pool, hub.as_ref().clone()));
        }
        hub
    }

    /// A hub that says it is listening and never hears anything (unit tests of its readers).
    #[cfg(test)]
    pub(crate) fn listening_to_nothing() -> Arc<Self> {
        Arc::new(Self::new(1))
    }

    /// A receiver of every session notice from now on.
    pub fn session_notices(&self) -> broadcast::Receiver<SessionNotice> {
        self.sessions.subscribe()
    }

    /// The listener's epoch: odd while it listens; a new value whenever it (re)connected or
    /// lost its connection, i.e. whenever changes may have gone unseen.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// A receiver of every change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<OfferChange> {
        self.tx.subscribe()
    }

    /// A slot for one more stream counted under every `(key, max)`, or `None` when one of the
    /// keys already has `max` streams open (nothing is taken then).
    pub fn open_slot(&self, limits: &[(String, usize)]) -> Option<StreamSlot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let full = limits
            .iter()
            .any(|(key, max)| open.get(key).copied().unwrap_or(0) >= *max);
        if full {
            return None;
        }
        for (key, _) in limits {
            *open.entry(key.clone()).or_default() += 1;
        }
        Some(StreamSlot {
            keys: limits.iter().map(|(k, _)| k.clone()).collect(),
            open: self.open.clone(),
        })
    }

    /// Tells this process' streams of `session` that it ended (logout).
    pub fn session_ended(&self, session: Uuid) {
        // No open stream is fine.
        let _ = self.ended.send(session);
    }

    /// A receiver of sessions ended from now on: in this process, or announced by another.
    pub fn ended_sessions(&self) -> broadcast::Receiver<Uuid> {
        self.ended.subscribe()
    }

    /// Hands a notification of `channel` to its readers. No readers is fine.
    fn dispatch(&self, channel: &str, payload: &str) {
        if channel == SESSIONS_CHANNEL {
            if let Some(notice) = SessionNotice::parse(payload) {
                if let SessionNotice::Ended(id) = notice {
                    let _ = self.ended.send(id);
                }
                let _ = self.sessions.send(notice);
            }
        } else if let Some(change) = OfferChange::parse(payload) {
            let _ = self.tx.send(change);
        }
    }
}

async fn listen(pool: PgPool, hub: Hub) {
    let epoch = hub.epoch.clone();
    // Odd while listening, even while not (see `Hub::epoch`).
    let down = |epoch: &AtomicU64| {
        if epoch.load(Ordering::SeqCst) % 2 == 1 {
            epoch.fetch_add(1, Ordering::SeqCst);
        }
    };
    loop {
        let result: Result<(), sqlx::Error> = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener
                .listen_all([EVENTS_CHANNEL, SESSIONS_CHANNEL])
                .await?;
            epoch.fetch_add(1, Ordering::SeqCst);
            loop {
                // `None`: the connection was lost and has been made again (LISTEN included);
                // what was sent meanwhile is gone, which readers learn from the epoch.
                let Some(n) = listener.try_recv().await? else {
                    epoch.fetch_add(2, Ordering::SeqCst);
                    continue;
                };
                hub.dispatch(n.channel(), n.payload());
            }
        }
        .await;
        down(&epoch);
        if let Err(e) = result {
            tracing::warn!(error = %e, "offer and session listener failed; reconnecting");
        }
        if hub.tx.receiver_count() == 0 && pool.is_closed() {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse() {
        let id = Uuid::new_v4();
        let (maker, taker) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(
            OfferChange::parse(&format!("{id}:-:CREATED:{maker}:-")),
            Some(OfferChange {
                offer_id: id,
                from: None,
                to: OfferStatus::Created,
                parties: Some(Parties { maker, taker: None }),
            })
        );
        let claimed = OfferChange::parse(&format!(
            "{id}:INVOICE_PAID:TAKER_BOND_PAID:{maker}:{taker}"
        ))
        .expect("parses");
        assert_eq!(claimed.to, OfferStatus::TakerBondPaid);
        let parties = claimed.parties.expect("parties");
        assert!(parties.include(maker) && parties.include(taker));
        assert!(!parties.include(Uuid::new_v4()));
        // An older sender's payload: no parties, the stream reads the offer instead.
        assert_eq!(
            OfferChange::parse(&format!("{id}:INVOICE_PAID:TAKER_BOND_PAID")),
            Some(OfferChange {
                offer_id: id,
                from: Some(OfferStatus::InvoicePaid),
                to: OfferStatus::TakerBondPaid,
                parties: None,
            })
        );
        assert_eq!(OfferChange::parse(&format!("{id}:-:CREATED:nope:-")), None);
        assert_eq!(OfferChange::parse("garbage"), None);
    }

    #[test]
    fn session_notices_parse_and_reach_their_readers() {
        let id = Uuid::new_v4();
        assert_eq!(
            SessionNotice::parse(&format!("ended:{id}")),
            Some(SessionNotice::Ended(id))
        );
        assert_eq!(
            SessionNotice::parse(&format!("renewed:{id}")),
            Some(SessionNotice::Renewed(id))
        );
        assert_eq!(SessionNotice::parse(&format!("moved:{id}")), None);
        assert_eq!(SessionNotice::parse("ended:nope"), None);

        let hub = Hub::new(1);
        let mut notices = hub.session_notices();
        let mut ended = hub.ended_sessions();
        let mut offers = hub.subscribe();
        hub.dispatch(SESSIONS_CHANNEL, &format!("renewed:{id}"));
        hub.dispatch(SESSIONS_CHANNEL, &format!("ended:{id}"));
        assert_eq!(notices.try_recv().ok(), Some(SessionNotice::Renewed(id)));
        assert_eq!(notices.try_recv().ok(), Some(SessionNotice::Ended(id)));
        assert_eq!(ended.try_recv().ok(), Some(id), "a logout ends streams");
        assert!(ended.try_recv().is_err(), "a renewal does not");
        assert!(offers.try_recv().is_err(), "not an offer change");
    }

    #[tokio::test]
    async fn slots_are_counted_per_key_and_given_back() {
        let hub = Hub::start(
            sqlx::postgres::PgPoolOptions::new()
                .connect_lazy("postgres://127.0.0.1:1/none")
                .expect("lazy pool"),
        );
        let ip = |n: usize| vec![("ip:a".to_owned(), n), ("s:x".to_owned(), 1)];
        let first = hub.open_slot(&ip(2)).expect("first");
        assert!(
            hub.open_slot(&ip(2)).is_none(),
            "the session's one slot is taken"
        );
        let other = hub
            .open_slot(&[("ip:a".to_owned(), 2)])
            .expect("second of the address");
        assert!(
            hub.open_slot(&[("ip:a".to_owned(), 2)]).is_none(),
            "address full"
        );
        drop(first);
        drop(other);
        assert!(hub.open.lock().expect("lock").is_empty(), "all given back");
        assert!(hub.open_slot(&ip(2)).is_some());
    }
}
