//! `/health`, `/ready` and the database gate: what the api says about itself and its
//! dependencies, and the one place requests meet a database this process knows is down.
//!
//! `/health` is the process alone (200 while it serves). `/ready` is the full picture: 503
//! naming each dependency that is down (the database, the mint). `/ready?scope=api` leaves the
//! mint out: it is what a load balancer checks, so a mint outage, which every api shares, does
//! not take them all out of rotation while the book, the offers and the payouts already
//! released are still served. Both read the verdicts of this process' watchers
//! (`openpleb_common::health`), so probes cost no request to the mint.

use std::time::Duration;

use openpleb_common::health::{Dependency, Status};
use poem::http::StatusCode;
use poem::web::{Data, Query};
use poem::{handler, Endpoint, IntoResponse, Request, Response};
use serde::Deserialize;

use crate::error::ApiError;
use crate::AppState;

/// How long a request waits for the first check of a dependency (the process' first moments)
/// before it counts as down.
const FIRST_CHECK_WAIT: Duration = Duration::from_secs(3);

#[handler]
pub(crate) fn health() -> Response {
    Response::builder()
        .content_type("application/json")
        .body(r#"{"status":"ok"}"#)
}

/// `/ready`'s query.
#[derive(Debug, Deserialize)]
pub(crate) struct ReadyParams {
    /// `full` (default): the database and the mint. `api`: the database only.
    scope: Option<String>,
}

#[handler]
pub(crate) async fn ready(
    state: Data<&AppState>,
    params: Query<ReadyParams>,
) -> poem::Result<Response> {
    let (scope, deps): (&str, &[Dependency]) = match params.scope.as_deref() {
        None | Some("full") => ("full", &Dependency::ALL),
        Some("api") => ("api", &[Dependency::Database]),
        Some(_) => {
            return Err(
                ApiError::bad_request("invalid_scope", "scope must be `full` or `api`").into(),
            )
        }
    };
    let mut body = serde_json::Map::new();
    let mut down = Vec::new();
    for &dep in deps {
        let up = state.ctx.health.known(dep, FIRST_CHECK_WAIT).await == Status::Up;
        body.insert(dep.name().to_owned(), up.into());
        if !up {
            down.push(dep.name());
        }
    }
    let status = if down.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    body.insert(
        "status".to_owned(),
        if down.is_empty() {
            "ready"
        } else {
            "not_ready"
        }
        .into(),
    );
    body.insert("scope".to_owned(), scope.into());
    body.insert("down".to_owned(), down.into());
    Ok(Response::builder()
        .status(status)
        .content_type("application/json")
        .body(serde_json::Value::Object(body).to_string()))
}

/// Answers 503 `database_unavailable` (with `Retry-After`) at once while this process' last
/// check found PostgreSQL down or its schema not yet migrated, instead of letting each
/// request wait out the pool's timeout; the first request of a fresh process waits for the
/// first check. Wraps the API routes only: `/health`, `/ready` and `/metrics` stay served.
pub async fn database_gate<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    if let Some(state) = req.data::<AppState>() {
        let database = state
            .ctx
            .health
            .known(Dependency::Database, FIRST_CHECK_WAIT);
        if database.await != Status::Up {
            return Err(ApiError::database_unavailable().into());
        }
    }
    Ok(next.call(req).await?.into_response())
}
