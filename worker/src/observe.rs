//! What every job run goes through, and the worker's own `/metrics` listener.
//!
//! A run gets a span with its queue and, when the job was enqueued by a request or by another
//! job, that correlation id (apalis task metadata, written by `openpleb_common::jobs::enqueue`);
//! the id is also set as the task-local, so jobs this run enqueues carry it on. Each run is
//! counted by queue and outcome and timed.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use apalis::prelude::{BoxDynError, MetadataStore};
use openpleb_common::jobs::REQUEST_ID_META;
use openpleb_common::telemetry::{valid_request_id, with_request_id};
use poem::listener::TcpListener;
use poem::web::Data;
use poem::{handler, EndpointExt, Response, Route, Server};
use tracing::Instrument;

use crate::WorkerContext;

/// Runs one job of `queue` (its handler's future `run`) under its correlation id, counting
/// and timing it.
pub async fn observed<F>(
    queue: &'static str,
    meta: &MetadataStore,
    run: F,
) -> Result<(), BoxDynError>
where
    F: Future<Output = Result<(), BoxDynError>>,
{
    // Metadata is ours, but a row can be edited by hand: only a well-formed id is logged.
    let id = meta
        .get(REQUEST_ID_META)
        .filter(|id| valid_request_id(id))
        .map(str::to_owned);
    let span = match &id {
        Some(id) => tracing::info_span!("job", queue, request_id = %id),
        None => tracing::info_span!("job", queue),
    };
    let started = Instant::now();
    let run = run.instrument(span.clone());
    let result = match id {
        Some(id) => with_request_id(id, run).await,
        None => run.await,
    };
    let ms = started.elapsed().as_millis();
    span.in_scope(|| match &result {
        Ok(()) => tracing::info!(ms, "job"),
        Err(e) => tracing::warn!(ms, error = %e, "job failed"),
    });
    openpleb_common::metrics::job_finished(queue, result.is_ok(), started);
    result
}

#[handler]
async fn metrics(ctx: Data<&Arc<WorkerContext>>) -> Response {
    if let Some(w) = &ctx.wallets {
        openpleb_common::metrics::wallets_open(w.open_count());
    }
    Response::builder()
        .content_type("text/plain; version=0.0.4")
        .body(openpleb_common::metrics::render())
}

/// Serves `GET /metrics` on `addr` until `shutdown` resolves: this process' job, wallet and
/// trade metrics (the fleet-wide gauges are on the api's admin listener).
pub async fn serve_metrics<S>(
    ctx: Arc<WorkerContext>,
    addr: String,
    shutdown: S,
) -> anyhow::Result<()>
where
    S: Future<Output = ()> + Send + 'static,
{
    let app = Route::new().at("/metrics", poem::get(metrics)).data(ctx);
    Server::new(TcpListener::bind(addr.clone()))
        .run_with_graceful_shutdown(app, shutdown, None)
        .await
        .with_context(|| format!("worker metrics on {addr}"))
}
