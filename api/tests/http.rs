//! The API skeleton over HTTP (poem's in-process client, same routes as production) against a
//! real PostgreSQL and a real mint.

use std::sync::Arc;
use std::time::Duration;

use openpleb_api::{admin_app, openapi_admin_yaml, openapi_yaml, public_app, AppState};
use openpleb_common::mint::MintClient;
use openpleb_devkit::scenario::check::refuses_to_start;
use openpleb_devkit::scenario::in_process;
use openpleb_devkit::scenario::{Auth, Call, Method};
use openpleb_devkit::{test_config, DevMint};
use poem::http::StatusCode;
use poem::test::TestClient;
use poem::EndpointExt;
use sqlx::PgPool;

async fn state(pool: PgPool, mint_url: &str) -> (AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("dir");
    let config = test_config("postgres://unused", mint_url);
    let state = AppState::new(
        Arc::new(config),
        pool,
        MintClient::new(mint_url).expect("mint url"),
    )
    .expect("app state");
    (state, dir)
}

/// A checked-in spec equals what the binary prints. Regenerate with
/// `UPDATE_OPENAPI=1 cargo test -p openpleb-api --test http openapi`.
fn check_spec(file: &str, command: &str, spec: String) {
    let path = format!("{}/../{file}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &spec).expect("write spec");
    }
    let checked_in = std::fs::read_to_string(&path).expect("spec is checked in");
    assert!(
        checked_in == spec,
        "{file} is stale: run `cargo run -q -p openpleb-api -- {command} > {file}`"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_openpleb-api"))
        .arg(command)
        .output()
        .expect("run openpleb-api");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), spec);
}

#[test]
fn openapi_yaml_is_up_to_date() {
    check_spec("openapi.yaml", "openapi", openapi_yaml());
}

#[test]
fn openapi_admin_yaml_is_up_to_date() {
    check_spec("openapi-admin.yaml", "openapi-admin", openapi_admin_yaml());
}

#[sqlx::test(migrator = "openpleb_common::db::MIGRATOR")]
async fn health_ready_docs_and_config(pool: PgPool) {
    let mint = DevMint::start().await.expect("mint");
    let (state, _dir) = state(pool, &mint.url).await;
    let cli = TestClient::new(public_app(state.clone()));

    let resp = cli.get("/health").send().await;
    resp.assert_status_is_ok();
    resp.assert_json(serde_json::json!({"status": "ok"})).await;

    let resp = cli.get("/ready").send().await;
    resp.assert_status_is_ok();
    resp.assert_json(
        serde_json::json!({"status": "ready", "scope": "full", "database": true,
        "mint": true, "down": []}),
    )
    .await;
    let resp = cli.get("/ready?scope=nonsense").send().await;
    resp.assert_status(StatusCode::BAD_REQUEST);
    resp.assert_json(serde_json::json!({"error": {"code": "invalid_scope",
        "message": "scope must be `full` or `api`"}}))
        .await;

    let resp = cli.get("/docs/").send().await;
    resp.assert_status_is_ok();
    assert!(resp
        .0
        .into_body()
        .into_string()
        .await
        .expect("html")
        .contains("swagger"));

    let resp = cli.get("/api/v1/config").send().await;
    resp.assert_status_is_ok();
    let json = resp.json().await;
    let body = json.value().object();
    body.get("mintUrl").assert_string(&mint.url);
    body.get("currency").assert_string("EUR");
    body.get("maxFiatAmountMinor").assert_i64(100_000);
    body.get("platformFee")
        .object()
        .get("percentBps")
        .assert_i64(100);
    body.get("makerBond")
        .object()
        .get("flatSats")
        .assert_i64(500);
    body.get("timers")
        .object()
        .get("createdSecs")
        .assert_i64(600);

    // The admin listener is separate and answers its own health check.
    let admin = TestClient::new(admin_app(state));
    admin.get("/health").send().await.assert_status_is_ok();
    admin
        .get("/api/v1/config")
        .send()
        .await
        .assert_status(StatusCode::NOT_FOUND);

    // A mint that stopped answering makes the API not ready (by the watcher's next check),
    // but not out of rotation: the api's own scope leaves the mint out.
    mint.stop().await.expect("stop mint");
    let started = std::time::Instant::now();
    let resp = loop {
        let resp = cli.get("/ready").send().await;
        if resp.0.status() != StatusCode::OK || started.elapsed() > Duration::from_secs(15) {
            break resp;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    resp.assert_status(StatusCode::SERVICE_UNAVAILABLE);
    resp.assert_json(
        serde_json::json!({"status": "not_ready", "scope": "full", "database": true,
        "mint": false, "down": ["mint"]}),
    )
    .await;
    let resp = cli.get("/ready?scope=api").send().await;
    resp.assert_status_is_ok();
    resp.assert_json(
        serde_json::json!({"status": "ready", "scope": "api", "database": true,
        "down": []}),
    )
    .await;
    cli.get("/health").send().await.assert_status_is_ok();
}

#[sqlx::test(migrator = "openpleb_common::db::MIGRATOR")]
async fn errors_use_the_envelope(pool: PgPool) {
    let mint = DevMint::start().await.expect("mint");
    let (state, _dir) = state(pool, &mint.url).await;
    let cli = TestClient::new(public_app(state).map_to_response().boxed());

    let get = Call::new(Method::Get, "/no-such-thing", Auth::Anonymous);
    let resp = in_process::send(&cli, get).await;
    resp.refused(404, "not_found").expect("not found");
    let post = Call::new(Method::Post, "/config", Auth::Anonymous);
    let resp = in_process::send(&cli, post).await;
    resp.refused(405, "method_not_allowed")
        .expect("not allowed");
    mint.stop().await.expect("stop mint");
}

/// Bad configuration stops the binary with one line naming the variable and exit code 2.
#[test]
fn bad_configuration_exits_with_code_2_and_one_line() {
    let run = |extra: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_openpleb-api"));
        cmd.env_clear()
            .env("DATABASE_URL", "postgres://127.0.0.1:1/none")
            .env("MINT_URL", "http://127.0.0.1:1")
            .env("OIDC_API_TOKEN", "oidc-token-0123456789")
            .env("PRICE_FIXED", "60000");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        refuses_to_start(cmd).expect("refused")
    };

    let stderr = run(&[]);
    assert_eq!(
        stderr,
        "configuration error: ADMIN_TOKEN is required but not set"
    );

    let stderr = run(&[
        ("ADMIN_TOKEN", "admin-token-0123456789"),
        ("DATABASE_POOL_SIZE", "lots"),
    ]);
    assert!(stderr.contains("DATABASE_POOL_SIZE"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // The api needs the workers' public keys (settlements lock the fee to the treasury's).
    let reputation = "cd".repeat(32);
    let data = format!("1:{}", "da".repeat(32));
    let stderr = run(&[
        ("ADMIN_TOKEN", "admin-token-0123456789"),
        ("REPUTATION_SECRET", reputation.as_str()),
        ("DATA_SECRETS", data.as_str()),
    ]);
    assert_eq!(
        stderr,
        "configuration error: QUOTE_LOCK_XPUB is required but not set"
    );
}

/// Hostile input is refused at the door: an oversized body with 413 while it is read (declared
/// or streamed), control characters in a query parameter or a JSON string with 400 naming
/// where; nothing reaches a handler.
#[sqlx::test(migrator = "openpleb_common::db::MIGRATOR")]
async fn oversized_bodies_and_control_characters_are_refused(pool: PgPool) {
    let mint = DevMint::start().await.expect("mint");
    let (state, _dir) = state(pool, &mint.url).await;
    let cli = TestClient::new(public_app(state.clone()));

    // 10 MiB to an endpoint that needs no credentials.
    let big = format!("{{\"bat\":\"{}\"}}", "a".repeat(10 * 1024 * 1024));
    let resp = cli
        .post("/api/v1/sessions")
        .content_type("application/json")
        .body(big.clone())
        .send()
        .await;
    resp.assert_status(StatusCode::PAYLOAD_TOO_LARGE);
    resp.assert_json(serde_json::json!({"error": {"code": "payload_too_large",
        "message": format!("the body may be at most {} bytes", openpleb_api::input::JSON_MAX_BYTES)}}))
        .await;
    // The same without a declared length: refused once the limit is read past.
    let chunks = futures::stream::iter(
        big.into_bytes()
            .chunks(64 * 1024)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let resp = cli
        .post("/api/v1/sessions")
        .content_type("application/json")
        .body(poem::Body::from_bytes_stream(chunks))
        .send()
        .await;
    resp.assert_status(StatusCode::PAYLOAD_TOO_LARGE);

    let resp = cli.get("/api/v1/offers?currency=%00EUR").send().await;
    resp.assert_status(StatusCode::BAD_REQUEST);
    resp.assert_json(serde_json::json!({"error": {"code": "invalid_characters",
        "message": "currency: control characters are not allowed"}}))
        .await;
    let resp = cli
        .post("/api/v1/sessions")
        .content_type("application/json")
        .body("{\"bat\":\"authA\\u0000x\"}")
        .send()
        .await;
    resp.assert_status(StatusCode::BAD_REQUEST);
    resp.assert_json(serde_json::json!({"error": {"code": "invalid_characters",
        "message": "bat: control characters are not allowed"}}))
        .await;
    mint.stop().await.expect("stop mint");
}

/// Serves `app` on a real loopback socket (so the peer address is 127.0.0.1, a trusted proxy by
/// default) and returns its address.
async fn serve(app: impl poem::Endpoint + 'static) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let acceptor = poem::listener::TcpAcceptor::from_tokio(listener).expect("acceptor");
    tokio::spawn(async move {
        let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
    });
    addr
}

/// One HTTP/1.1 GET of `/health` with an `X-Forwarded-For` header; the status code.
async fn get_forwarded(addr: std::net::SocketAddr, forwarded_for: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "GET /health HTTP/1.1\r\nHost: test\r\nX-Forwarded-For: {forwarded_for}\r\n\
         Connection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut resp = String::new();
    s.read_to_string(&mut resp).await.expect("read");
    resp.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status line")
}

/// Behind a proxy (`TRUST_PROXY=true`), a client that makes up the left part of
/// `X-Forwarded-For` gets no fresh rate-limit bucket, on either listener: it is known by the
/// address the proxy appended. Another client behind the same proxy has its own bucket.
#[sqlx::test(migrator = "openpleb_common::db::MIGRATOR")]
async fn spoofed_forwarded_for_buys_no_fresh_bucket(pool: PgPool) {
    let mint_url = "http://127.0.0.1:1";
    let mut config = test_config("postgres://unused", mint_url);
    config.api.rate_limits.trust_forwarded_for = true;
    config.api.rate_limits.anonymous = 3;
    let state = AppState::new(
        Arc::new(config),
        pool,
        MintClient::new(mint_url).expect("mint url"),
    )
    .expect("app state");
    // The listeners share their buckets: a client of its own for each.
    for (addr, client) in [
        (serve(public_app(state.clone())).await, "203.0.113.7"),
        (serve(admin_app(state.clone())).await, "203.0.113.8"),
    ] {
        let mut statuses = Vec::new();
        for i in 0..5 {
            let spoofed = format!("10.9.{i}.1, {client}");
            statuses.push(get_forwarded(addr, &spoofed).await);
        }
        assert_eq!(statuses, [200, 200, 200, 429, 429], "{addr}");
        assert_eq!(get_forwarded(addr, "198.51.100.9").await, 200, "{addr}");
    }
}
