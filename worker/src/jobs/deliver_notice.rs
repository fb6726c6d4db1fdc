//! Delivers one notice to one push subscription or webhook.
//!
//! Safe to repeat: a delivery changes nothing of ours but the target's row (deleted when its
//! push service says it is gone) and the metrics. Delivery is at least once: a run that dies
//! after the push service's 201 and before its own end is run again and sends the notice a
//! second time, as the same Web Push topic (the push service keeps the newer) or the same
//! `webhook-id` (the receiver drops it). A failure the far end may get over (429, 5xx, a
//! network error) is tried again later: the job re-enqueues itself for its next try with a
//! growing delay (at least what `Retry-After` asks), each try under its own key so a duplicate
//! run schedules it once; after `NOTIFY_MAX_ATTEMPTS` tries the notice is given up and counted.
//! Nothing here ever waits on a trade, and no trade waits on it.

use std::sync::Arc;
use std::time::Duration;

use apalis::prelude::{BoxDynError, Data};
use chrono::Utc;
use openpleb_common::db::notify_targets::{self, Kind};
use openpleb_common::domain::notify::topic;
use openpleb_common::jobs::{enqueue_in, DeliverNotice};
use openpleb_common::metrics;
use openpleb_common::notify::push::{self, Delivery, Subscription, VapidKey};
use openpleb_common::notify::send::{send, Policy, SendError};
use openpleb_common::notify::webhook;

use crate::WorkerContext;

/// The first retry's delay; each later one doubles, up to [`MAX_DELAY`].
const FIRST_DELAY: Duration = Duration::from_secs(2);
/// The longest wait between tries (also the most of a `Retry-After` honoured).
const MAX_DELAY: Duration = Duration::from_secs(600);
/// How long a push service keeps a notice without a deadline for an offline browser.
const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);

/// Handles one delivery.
pub async fn handle(job: DeliverNotice, ctx: Data<Arc<WorkerContext>>) -> Result<(), BoxDynError> {
    super::with_timeout(run(job, &ctx)).await
}

async fn run(job: DeliverNotice, ctx: &WorkerContext) -> Result<(), BoxDynError> {
    // Deleted (gone at its push service, removed by its owner, or its offer is over): done.
    let Some(target) = notify_targets::get(&ctx.pool, job.target_id).await? else {
        return Ok(());
    };
    let cfg = &ctx.config.notify;
    let body = serde_json::to_vec(&job.notice)?;
    let (channel, request) = match &target.kind {
        Kind::WebPush { p256dh, auth } => {
            let Some(key) = cfg.vapid_private_key.as_ref() else {
                metrics::notice_failed("webpush", "unsendable");
                tracing::warn!(target = %target.id, "no VAPID_PRIVATE_KEY: push notice dropped");
                return Ok(());
            };
            let key = VapidKey::from_base64url(key.expose())?;
            let ttl = job
                .notice
                .deadline
                .and_then(|d| (d - Utc::now()).to_std().ok())
                .unwrap_or(DEFAULT_TTL)
                .max(Duration::from_secs(60));
            let topic = topic(job.notice.offer_id);
            let delivery = Delivery {
                ttl,
                urgency: if job.urgent { "high" } else { "normal" },
                topic: &topic,
            };
            let sub = Subscription {
                endpoint: &target.endpoint,
                p256dh,
                auth,
            };
            (
                "webpush",
                push::request(&key, &cfg.vapid_subject, &sub, &body, &delivery),
            )
        }
        Kind::Webhook { secret } => {
            let id = format!("msg_{}", hex_key(&job.key));
            let req =
                webhook::request(&target.endpoint, secret, &id, Utc::now().timestamp(), &body)
                    .map_err(|e| push::PushError::Build(e.to_owned()));
            ("webhook", req)
        }
    };
    let request = match request {
        Ok(r) => r,
        Err(e) => {
            metrics::notice_failed(channel, "unsendable");
            tracing::warn!(target = %target.id, error = %e, "notice could not be made; dropped");
            return Ok(());
        }
    };
    let policy = Policy {
        allow_private: cfg.allow_private,
        connect_timeout: cfg.connect_timeout,
        timeout: cfg.timeout,
    };
    match send(request, &policy).await {
        Ok(a) if (200..300).contains(&a.status) => {
            metrics::notice_sent(channel, job.enqueued_at_ms);
            Ok(())
        }
        Ok(a) if a.status == 404 || a.status == 410 => {
            metrics::notice_failed(channel, "gone");
            notify_targets::delete(&ctx.pool, target.id).await?;
            tracing::info!(target = %target.id, status = a.status, "notify target gone; deleted");
            Ok(())
        }
        Ok(a) if a.status == 429 || a.status >= 500 => {
            let class = if a.status == 429 {
                "rate_limited"
            } else {
                "server_error"
            };
            metrics::notice_failed(channel, class);
            retry(ctx, job, a.retry_after.map(Duration::from_secs), channel).await
        }
        Ok(a) => {
            metrics::notice_failed(channel, "rejected");
            tracing::warn!(target = %target.id, status = a.status, "notice refused by its receiver");
            Ok(())
        }
        Err(SendError::Refused(why)) => {
            metrics::notice_failed(channel, "blocked");
            tracing::warn!(target = %target.id, why, "notice not sent: address refused");
            Ok(())
        }
        Err(SendError::Network(e)) => {
            metrics::notice_failed(channel, "network");
            tracing::info!(target = %target.id, error = %e, "notice not delivered; retried");
            retry(ctx, job, None, channel).await
        }
    }
}

/// Schedules the next try, or gives the notice up after the last.
async fn retry(
    ctx: &WorkerContext,
    job: DeliverNotice,
    asked: Option<Duration>,
    channel: &'static str,
) -> Result<(), BoxDynError> {
    let next = job.attempt + 1;
    if next >= ctx.config.notify.max_attempts {
        metrics::notice_failed(channel, "given_up");
        tracing::warn!(target = %job.target_id, tries = next, "notice given up");
        return Ok(());
    }
    let backoff = FIRST_DELAY
        .saturating_mul(1u32 << job.attempt.min(16))
        .min(MAX_DELAY);
    let delay = asked.map_or(backoff, |a| a.min(MAX_DELAY).max(backoff));
    let mut conn = ctx.pool.acquire().await?;
    let again = DeliverNotice {
        attempt: next,
        ..job
    };
    enqueue_in(&mut conn, &again, delay).await?;
    Ok(())
}

/// A short, stable message id for a notice key (`webhook-id` must not carry what happened).
fn hex_key(key: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(key.as_bytes());
    digest.iter().take(12).map(|b| format!("{b:02x}")).collect()
}
