//! The OpenPleb HTTP API: poem + poem-openapi.
//!
//! Two listeners: the public one (traders; `/health`, `/ready`, `/docs` at its root and every
//! API route under `API_BASE_PATH`) and the admin one (admins and the OIDC provider; bind it to
//! a private address). Handlers check state, check the caller, act: they write through
//! `openpleb_common::db` and enqueue follow-up jobs in the same transaction.
//!
//! The api serves whatever its dependencies allow: with the mint down, everything that does
//! not need it (the book, offers, payouts already released); with the database down, only
//! `/health`, `/ready` and `/metrics` ([`readiness`]).

pub mod auth;
pub mod book_cache;
pub mod error;
pub mod events;
pub mod input;
pub mod links;
pub mod observe;
pub mod ratelimit;
pub mod readiness;
pub mod routes;
pub mod session_cache;
pub mod spec_guard;
pub mod stats_cache;
pub mod upload_guard;

use std::sync::Arc;

use openpleb_common::config::Config;
use openpleb_common::desk::MintDesk;
use openpleb_common::health::watch::{Fatal, Watchers};
use openpleb_common::health::Dependency;
use openpleb_common::metrics::gauges::DbGauges;
use openpleb_common::mint::{BlindAuthSetupError, MintClient, MintNeeds};
use openpleb_common::trade::TradeCtx;
use poem::{EndpointExt, IntoEndpoint, Route};
use poem_openapi::OpenApiService;
use sqlx::PgPool;

use routes::admin_disputes::AdminDisputesApi;
use routes::admin_offers::AdminOffersApi;
use routes::admin_treasury::AdminTreasuryApi;
use routes::disputes::DisputesApi;
use routes::events::EventsApi;
use routes::invites::{AdminInvitesApi, InvitesApi};
use routes::meta::MetaApi;
use routes::notify::NotifyApi;
use routes::offers::{BookApi, FundingApi, PayoutKeysApi, PayoutsApi, TradeApi};
use routes::providers::{AdminProvidersApi, ProvidersApi};
use routes::reputation::ReputationApi;
use routes::sessions::SessionsApi;
use routes::users::{AdminUsersApi, UsersApi};

/// Everything a handler may need; cloned per request (cheap: `Arc`s and a pool).
#[derive(Debug, Clone)]
pub struct AppState {
    /// What trade steps use: database, the mint desk, configuration, prices, clock (no
    /// wallets: the api holds none, nor any key that spends).
    pub ctx: TradeCtx,
    /// The mint.
    pub mint: MintClient,
    /// When the mint's blind-auth set-up was last confirmed.
    pub blind_auth_checked: Arc<tokio::sync::Mutex<Option<std::time::Instant>>>,
    /// Rate limiters, shared by both listeners.
    pub rate_limits: Arc<ratelimit::RateLimiters>,
    /// Live offer changes.
    pub events: Arc<events::Hub>,
    /// Anonymous book pages, ready to send.
    pub book: Arc<book_cache::BookCache>,
    /// Live sessions recently looked up, for reads.
    pub sessions: Arc<session_cache::SessionCache>,
    /// The last `/stats` count.
    pub stats: Arc<stats_cache::StatsCache>,
    /// The database-backed gauges `/metrics` reports, cached between scrapes.
    pub gauges: Arc<DbGauges>,
    /// The watchers of the mint and the database; their verdicts are in `ctx.health`.
    pub watchers: Arc<Watchers>,
}

impl AppState {
    /// State for `config`, `pool` and a mint client, with a mint desk (without a service
    /// account) and price source built from the configuration.
    pub fn new(config: Arc<Config>, pool: PgPool, mint: MintClient) -> anyhow::Result<Self> {
        let desk = MintDesk::new(
            &config.mint.url,
            config.platform_keys()?,
            None,
            openpleb_common::health::Health::new(),
        )?;
        Ok(Self::with_desk(config, pool, mint, desk))
    }

    /// State with a given mint desk (e.g. one with service BATs). Starts watching the mint and
    /// the database (migrating it once it answers) into the desk's health; neither needs to be
    /// up.
    pub fn with_desk(config: Arc<Config>, pool: PgPool, mint: MintClient, desk: MintDesk) -> Self {
        let price =
            openpleb_common::price::from_config(&config.prices, &config.limits.fiat_currency);
        openpleb_common::metrics::install();
        // A live wallet counts as behind after three reconciliation periods (as the alerts
        // endpoint counts it).
        let gauges = DbGauges::new(
            pool.clone(),
            config.ops.metrics_cache,
            config.worker.reconcile_interval * 3,
        );
        let events = events::Hub::start(pool.clone());
        let watchers = Watchers::start(desk.health(), pool.clone(), mint.clone(), MintNeeds::Api);
        Self {
            watchers: Arc::new(watchers),
            gauges: Arc::new(gauges),
            rate_limits: ratelimit::RateLimiters::new(&config.api.rate_limits),
            book: book_cache::BookCache::start(events.clone(), config.api.book_cache),
            sessions: session_cache::SessionCache::start(events.clone(), config.api.session_cache),
            stats: Arc::new(stats_cache::StatsCache::new(config.api.stats_cache)),
            events,
            ctx: TradeCtx::for_api(pool, desk, config, price),
            mint,
            blind_auth_checked: Arc::default(),
        }
    }

    /// A session's lifetime.
    pub fn session_lifetime(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.ctx.config.api.session_expiry)
            .unwrap_or_else(|_| chrono::Duration::hours(1))
    }

    /// Resolves with the first problem no waiting fixes (a mint that lacks what the api
    /// relies on, a migration that fails): the binary exits on it.
    pub async fn fatal(&self) -> Fatal {
        self.watchers.fatal().await
    }

    /// 503 `mint_unavailable` at once while this process' last check found the mint down.
    pub fn need_mint(&self) -> Result<(), error::ApiError> {
        Ok(self.ctx.need_mint()?)
    }

    /// Confirms, at most once per `BAT_VERIFICATION_CACHE_TTL`, that the mint still
    /// blind-protects the endpoint BATs are spent at; without that a spend proves nothing.
    pub async fn ensure_blind_auth(&self) -> Result<(), error::ApiError> {
        let mut checked = self.blind_auth_checked.lock().await;
        let fresh =
            checked.is_some_and(|t| t.elapsed() < self.ctx.config.api.bat_verification_cache_ttl);
        if fresh {
            return Ok(());
        }
        match self.mint.check_blind_auth().await {
            Ok(()) => {
                *checked = Some(std::time::Instant::now());
                Ok(())
            }
            Err(BlindAuthSetupError::Unreachable(_)) => {
                self.ctx.health.suspect(Dependency::Mint);
                Err(error::ApiError::mint_unavailable())
            }
            Err(e) => {
                tracing::error!(error = %e, "refusing BATs");
                Err(error::ApiError::unavailable(
                    "mint_auth_unavailable",
                    e.to_string(),
                ))
            }
        }
    }
}

/// The public API's operations.
pub type PublicApis = (
    MetaApi,
    InvitesApi,
    UsersApi,
    SessionsApi,
    ProvidersApi,
    BookApi,
    FundingApi,
    TradeApi,
    PayoutsApi,
    PayoutKeysApi,
    NotifyApi,
    DisputesApi,
    ReputationApi,
    EventsApi,
);

/// The admin API's operations.
pub type AdminApis = (
    AdminInvitesApi,
    AdminUsersApi,
    AdminProvidersApi,
    AdminOffersApi,
    AdminDisputesApi,
    AdminTreasuryApi,
);

/// The contract's version, `info.version` of both OpenAPI documents: semantic, and separate
/// from the crates' version because clients depend on the documents, not on the code. Raise
/// it with a `CHANGELOG.md` entry; a breaking change raises the major version
/// (`openpleb-contract` checks the documents against `api/released/`; see `docs/trading.md`,
/// "Versions and releases").
pub const API_VERSION: &str = "1.1.0";

/// The public OpenAPI service with the server URL `base_path`.
pub fn public_service(base_path: &str) -> OpenApiService<PublicApis, ()> {
    OpenApiService::new(
        (
            MetaApi,
            InvitesApi,
            UsersApi,
            SessionsApi,
            ProvidersApi,
            BookApi,
            FundingApi,
            TradeApi,
            PayoutsApi,
            PayoutKeysApi,
            NotifyApi,
            DisputesApi,
            ReputationApi,
            EventsApi,
        ),
        "OpenPleb API",
        API_VERSION,
    )
    .description(
        "Privacy-first peer-to-peer fiat-to-bitcoin exchange. All value moves as Cashu \
             ecash. Errors are `{\"error\":{\"code\",\"message\"}}` with a stable `code`. \
             Trader calls take `Authorization: Bearer <BAT>` of a session. Requests are rate \
             limited per session, and without one per client address (an IPv6 client per \
             network, a /64 by default); a bearer token that names no live session counts \
             against its address, and past that budget is refused before it is looked up: \
             429 `rate_limited` with `Retry-After`. Live updates are \
             server-sent events: `GET /events/book` sends `offer.listed` and `offer.unlisted` \
             (data `{\"offerId\"}`); `GET /events/session` sends `offer.status` (data \
             `{\"offerId\",\"status\"}`) for the session's own offers.",
    )
    .server(base_path)
}

/// The admin OpenAPI service (admin listener) with the server URL `base_path`.
pub fn admin_service(base_path: &str) -> OpenApiService<AdminApis, ()> {
    OpenApiService::new(
        (
            AdminInvitesApi,
            AdminUsersApi,
            AdminProvidersApi,
            AdminOffersApi,
            AdminDisputesApi,
            AdminTreasuryApi,
        ),
        "OpenPleb admin API",
        API_VERSION,
    )
    .description(
        "Administration and the OIDC provider's registration check. Serve on a private \
         address. Bearer `ADMIN_TOKEN` (role admin) or `OIDC_API_TOKEN` (role oidc-api).",
    )
    .server(base_path)
}

/// The public OpenAPI document as YAML, with the default base path (`openapi.yaml`).
pub fn openapi_yaml() -> String {
    public_spec_yaml("/api/v1")
}

/// The public OpenAPI document as YAML with the server URL `base_path`, links included.
pub fn public_spec_yaml(base_path: &str) -> String {
    links::with_links(&public_service(base_path).spec_yaml(), links::PUBLIC)
}

/// The admin OpenAPI document as YAML, with the default base path (`openapi-admin.yaml`).
pub fn openapi_admin_yaml() -> String {
    admin_spec_yaml("/api/v1")
}

/// The admin OpenAPI document as YAML with the server URL `base_path`, links included.
pub fn admin_spec_yaml(base_path: &str) -> String {
    links::with_links(&admin_service(base_path).spec_yaml(), links::ADMIN)
}

/// Serves `yaml` as poem-openapi serves its own document.
fn yaml_endpoint(yaml: String) -> impl poem::Endpoint {
    poem::endpoint::make_sync(move |_| {
        poem::Response::builder()
            .content_type("application/x-yaml")
            .header("Content-Disposition", "inline; filename=\"spec.yaml\"")
            .body(yaml.clone())
    })
}

/// The public listener's routes.
pub fn public_app(state: AppState) -> impl poem::Endpoint {
    let base = state.ctx.config.api.base_path.clone();
    let api = public_service(&base);
    let docs = api.swagger_ui();
    let spec = yaml_endpoint(public_spec_yaml(&base));
    let allow = Arc::new(spec_guard::SpecTable::new(
        &base,
        &api.spec(),
        &["/health", "/ready", "/openapi.yaml"],
    ));
    Route::new()
        .at("/health", poem::get(readiness::health))
        .at("/ready", poem::get(readiness::ready))
        .nest("/docs", docs)
        .at("/openapi.yaml", spec)
        .nest(base, api.into_endpoint().around(readiness::database_gate))
        .around(move |ep, req| spec_guard::guard(allow.clone(), ep, req))
        .around(input::harden)
        .around(upload_guard::guard)
        .around(ratelimit::public)
        .data(state)
        .around(|ep, req| observe::observe(ep, req, "public"))
        .catch_all_error(error::envelope)
}

/// The admin listener's routes.
pub fn admin_app(state: AppState) -> impl poem::Endpoint {
    let base = state.ctx.config.api.base_path.clone();
    let api = admin_service(&base);
    let docs = api.swagger_ui();
    let spec = yaml_endpoint(admin_spec_yaml(&base));
    let allow = Arc::new(spec_guard::SpecTable::new(
        &base,
        &api.spec(),
        &["/health", "/metrics", "/openapi.yaml"],
    ));
    Route::new()
        .at("/health", poem::get(readiness::health))
        .at("/metrics", poem::get(observe::metrics_endpoint))
        .nest("/docs", docs)
        .at("/openapi.yaml", spec)
        .nest(base, api.into_endpoint().around(readiness::database_gate))
        .around(move |ep, req| spec_guard::guard(allow.clone(), ep, req))
        .around(input::harden)
        .around(ratelimit::admin)
        .data(state)
        .around(|ep, req| observe::observe(ep, req, "admin"))
        .catch_all_error(error::envelope)
}
