//! Live updates: one PostgreSQL `LISTEN` per api process, fanned out to every open stream.
//!
//! Whichever process (api or worker) moves an offer sends a `NOTIFY` in the same transaction,
//! so every api process sees every committed change, in commit order.

use std::sync::Arc;
use std::time::Duration;

use openpleb_common::db::offers::EVENTS_CHANNEL;
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
        Some(Self { offer_id, from, to })
    }
}

/// The fan-out.
#[derive(Debug, Clone)]
pub struct Hub {
    tx: broadcast::Sender<OfferChange>,
}

impl Hub {
    /// Starts listening (reconnecting after errors) on `pool`.
    pub fn start(pool: PgPool) -> Arc<Self> {
        let (tx, _) = broadcast::channel(1024);
        let hub = Arc::new(Self { tx: tx.clone() });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(listen(pool, tx));
        }
        hub
    }

    /// A receiver of every change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<OfferChange> {
        self.tx.subscribe()
    }
}

async fn listen(pool: PgPool, tx: broadcast::Sender<OfferChange>) {
    loop {
        let result: Result<(), sqlx::Error> = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(EVENTS_CHANNEL).await?;
            loop {
                let n = listener.recv().await?;
                if let Some(change) = OfferChange::parse(n.payload()) {
                    // No subscribers is fine.
                    let _ = tx.send(change);
                }
                if tx.receiver_count() == 0 && tx.is_empty() {
                    // Keep listening: streams may open later.
                }
            }
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "offer event listener failed; reconnecting");
        }
        if tx.receiver_count() == 0 && pool.is_closed() {
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
        assert_eq!(
            OfferChange::parse(&format!("{id}:-:CREATED")),
            Some(OfferChange {
                offer_id: id,
                from: None,
                to: OfferStatus::Created
            })
        );
        assert_eq!(
            OfferChange::parse(&format!("{id}:INVOICE_PAID:INVOICE_CREATED")),
            Some(OfferChange {
                offer_id: id,
                from: Some(OfferStatus::InvoicePaid),
                to: OfferStatus::InvoiceCreated
            })
        );
        assert_eq!(OfferChange::parse("garbage"), None);
    }
}
