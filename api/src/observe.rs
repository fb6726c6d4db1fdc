//! The outermost layer of both listeners: a correlation id per request, a span carrying it,
//! and the HTTP metrics; plus the admin listener's `/metrics` endpoint.
//!
//! The id comes from `X-Request-Id` when the client (or a proxy) sent a well-formed one, else
//! it is made here; it is echoed in the response, put on every log line of the request (the
//! span) and handed to the jobs the request enqueues (a task-local read by
//! `openpleb_common::jobs::enqueue`). Metrics use the matched route template, never the raw
//! path: ids in paths would make one series per offer, and paths may name public keys.

use std::time::Instant;

use openpleb_common::metrics::names;
use openpleb_common::telemetry::{new_request_id, valid_request_id, with_request_id};
use poem::web::Data;
use poem::PathPattern;
use poem::{handler, Endpoint, IntoResponse, Request, Response};
use tracing::Instrument;

use crate::AppState;

/// The header carrying the correlation id, both ways.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Runs `req` through `next` under its correlation id and records it in the HTTP metrics of
/// `listener`. Errors are turned into the API's envelope here, so the status counted is the
/// one the client sees and the response can carry the id.
pub async fn observe<E: Endpoint>(
    next: E,
    req: Request,
    listener: &'static str,
) -> poem::Result<Response> {
    let id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| valid_request_id(v))
        .map_or_else(new_request_id, str::to_owned);
    let method = method_label(req.method());
    let span = tracing::info_span!("request", request_id = %id, method = %method);
    let started = Instant::now();
    let result = with_request_id(id.clone(), next.call(req))
        .instrument(span.clone())
        .await;
    let (mut resp, route) = match result {
        Ok(resp) => {
            let resp = resp.into_response();
            let route = resp.data::<PathPattern>().map(|p| p.0.to_string());
            (resp, route)
        }
        Err(err) => {
            let route = err.data::<PathPattern>().map(|p| p.0.to_string());
            (crate::error::envelope(err).await, route)
        }
    };
    let route = route.unwrap_or_else(|| "unmatched".to_owned());
    let status = resp.status().as_u16();
    let elapsed = started.elapsed();
    span.in_scope(|| {
        tracing::info!(%route, status, ms = elapsed.as_millis(), "request");
    });
    metrics::counter!(
        names::HTTP_REQUESTS,
        "listener" => listener,
        "method" => method,
        "route" => route.clone(),
        "status" => status.to_string(),
    )
    .increment(1);
    metrics::histogram!(
        names::HTTP_REQUEST_DURATION,
        "listener" => listener,
        "method" => method,
        "route" => route,
    )
    .record(elapsed.as_secs_f64());
    if let Ok(value) = poem::http::HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    Ok(resp)
}

/// The method as a label: the standard ones by name, anything else `other` (a client can send
/// any token as a method, and each would be a new series).
fn method_label(method: &poem::http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// `GET /metrics` (admin listener): every metric of this process plus the fleet-wide gauges
/// computed from the database (cached, see `METRICS_CACHE_SECS`), in Prometheus text format.
#[handler]
pub async fn metrics_endpoint(state: Data<&AppState>) -> Response {
    state.gauges.refresh().await;
    Response::builder()
        .content_type("text/plain; version=0.0.4")
        .body(openpleb_common::metrics::render())
}
