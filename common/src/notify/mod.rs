//! Telling parties out of band (Web Push, webhooks) so that silence never decides against a
//! party that was not told: the notices a move causes and the reminders before its deadline,
//! enqueued in the move's own transaction (a rolled-back move sends nothing, a committed one is
//! never lost), and delivered by the worker ([`crate::jobs::DeliverNotice`]).

pub mod push;
pub mod send;
pub mod webhook;

use chrono::Utc;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::db::notify_targets::{self, Target};
use crate::db::offers::Offer;
use crate::domain::notify::{on_entry, reminded, reminder_offsets, Notice};
use crate::domain::offer::OfferStatus;
use crate::domain::role::Role;
use crate::jobs::{self, DeliverNotice, EnqueueError, RemindParty};

/// Who is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipient {
    /// A party of the offer (the taker: with the targets of its winning claim).
    Party(Role),
    /// One claimant, by its claim.
    Claim(Uuid),
}

/// Enqueues `notice` for every target of `to`, in the caller's transaction. `key` names the
/// notice (what happened, to whom): a second enqueue of the same key adds nothing, and a
/// webhook carries it as its `webhook-id`, so a receiver can drop a duplicate delivery.
pub async fn tell(
    conn: &mut PgConnection,
    offer_id: Uuid,
    to: Recipient,
    notice: &Notice,
    urgent: bool,
    key: &str,
) -> Result<(), EnqueueError> {
    let targets: Vec<Target> = match to {
        Recipient::Party(role) => notify_targets::of_party(conn, offer_id, role).await?,
        Recipient::Claim(id) => notify_targets::of_claim(conn, id).await?,
    };
    let enqueued_at_ms = Utc::now().timestamp_millis();
    for t in targets {
        let job = DeliverNotice {
            target_id: t.id,
            notice: notice.clone(),
            urgent,
            key: key.to_owned(),
            attempt: 0,
            enqueued_at_ms,
        };
        jobs::enqueue(conn, &job).await?;
    }
    Ok(())
}

/// What entering its current status (from `from`) tells the parties of `offer`, and the
/// reminders before its deadline for the party whose silence decides there, enqueued in the
/// mover's transaction. `remind_before` is `NOTIFY_REMIND_BEFORE`.
pub async fn on_move(
    conn: &mut PgConnection,
    offer: &Offer,
    from: Option<OfferStatus>,
    remind_before: &[crate::domain::notify::RemindBefore],
) -> Result<(), EnqueueError> {
    let entered = offer.state_entered_at.timestamp_micros();
    for (role, action) in on_entry(from, offer.status) {
        let notice = Notice {
            offer_id: offer.id,
            status: offer.status.as_str().to_owned(),
            deadline: offer.expires_at,
            action: action.as_str().to_owned(),
        };
        let key = format!("{}:{}:{entered}:{role}", offer.id, offer.status);
        tell(conn, offer.id, Recipient::Party(role), &notice, false, &key).await?;
    }
    let (Some(role), Some(deadline)) = (reminded(from, offer.status), offer.expires_at) else {
        return Ok(());
    };
    let timer = (deadline - offer.state_entered_at)
        .to_std()
        .unwrap_or_default();
    for before in reminder_offsets(timer, remind_before) {
        let at = deadline - chrono::Duration::from_std(before).unwrap_or_default();
        let delay = (at - Utc::now()).to_std().unwrap_or_default();
        let job = RemindParty {
            offer_id: offer.id,
            status: offer.status,
            entered_at_micros: entered,
            role,
            before_secs: before.as_secs(),
        };
        jobs::enqueue_in(conn, &job, delay).await?;
    }
    Ok(())
}
