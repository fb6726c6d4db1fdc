//! Operations: after a whole trade (and a second offer left funded in the book), the taker's
//! ended session cleaned and a retention run, a scrape of the admin listener's `/metrics` lists
//! the key series with non-zero values and every metric of `names::ALL` that this moved, each
//! with its `HELP` and `TYPE` lines; a worker serves its own `/metrics` at
//! `WORKER_METRICS_ADDR`, and the trade's correlation id went from the request into the jobs it
//! caused: it is in their metadata, and JSON log lines of both the api's request and the
//! worker's job runs carry it.
//!
//! One test per binary on purpose: the metrics recorder is process-wide (the api and the
//! worker, both in this process, record into it).

mod common;

use common::{payout_key, Auth, Harness, Transport};
use openpleb_common::metrics::names;
use openpleb_devkit::capture::Capture;
use openpleb_devkit::scenario::trade::fund;
use openpleb_devkit::scenario::{Call, Method};
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Every sample of metric `name` as (labels, value).
fn samples(text: &str, name: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, labels) = match series.split_once('{') {
                Some((m, rest)) => (m, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            (metric == name).then(|| (labels.to_owned(), value.parse().unwrap_or(f64::NAN)))
        })
        .collect()
}

/// The sum of `name`'s samples whose labels contain every one of `having`.
fn total(text: &str, name: &str, having: &[&str]) -> f64 {
    samples(text, name)
        .into_iter()
        .filter(|(labels, _)| having.iter().all(|h| labels.contains(h)))
        .map(|(_, v)| v)
        .sum()
}

async fn http_get(addr: &str, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut out = String::new();
    stream.read_to_string(&mut out).await.expect("read");
    out
}

/// Whether a JSON log line has a span named `span` with `request_id` = `id`.
fn in_span(line: &serde_json::Value, span: &str, id: &str) -> bool {
    line["spans"].as_array().is_some_and(|spans| {
        spans
            .iter()
            .any(|s| s["name"] == span && s["request_id"] == id)
    })
}

#[sqlx::test(migrations = false)]
async fn a_scrape_after_a_trade_shows_it(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) -> anyhow::Result<()> {
    // JSON logs as LOG_FORMAT=json writes them, captured, beside the database timing layer, as
    // `telemetry::init` sets them up (the filter is the log output's alone).
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let capture = Capture::default();
    let writer = capture.clone();
    let logs = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(true)
        .with_writer(move || writer.clone())
        .with_filter(tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::registry()
        .with(logs)
        .with(openpleb_common::metrics::db::layer())
        .init();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let worker_addr = format!("127.0.0.1:{port}");
    let addr = worker_addr.clone();
    let h = Harness::start_configured(opts, conn, move |c| {
        c.ops.worker_metrics_addr = Some(addr);
        // Scrapes below must see the trade's end, not a cached picture of its start.
        c.ops.metrics_cache = std::time::Duration::from_secs(1);
    })
    .await;
    let provider = h.provider().await;
    let maker = h.session().await;
    let taker = h.session().await;

    // The offer is created under a correlation id of the client's choosing.
    let create = |corr: &'static str| {
        let (_, key) = payout_key();
        let offer = json!({
            "fiatAmount": 2_000, "currency": "EUR", "fiatProviderId": provider,
            "paymentDetails": "IBAN DE00 1234 5678 9012 3456 78", "makerPayoutPubkey": key,
        });
        let call = Call::new(Method::Post, "/offers", &maker).json(offer);
        h.send(call.header("X-Request-Id", corr))
    };
    let created = create("trade-corr-0001").await?;
    assert_eq!(created.header("x-request-id"), Some("trade-corr-0001"));
    let id = fund(&h, &created.expect(201)?, &maker).await?;
    h.trade_to_completion(id, &maker, &taker).await;
    h.released_payouts(id, &taker).await;

    // The quote watcher the request enqueued carries its id; a malformed id is replaced.
    let carried: i64 = sqlx::query_scalar(
        "select count(*) from apalis.jobs where metadata -> 'request_id' = 'trade-corr-0001'",
    )
    .fetch_one(&h.pool)
    .await?;
    assert!(carried >= 1, "the request's jobs carry its correlation id");
    let created = create("bad id with spaces").await?;
    let fresh = created.header("x-request-id").expect("a generated id");
    assert_eq!(fresh.len(), 26, "a ULID: {fresh}");
    fund(&h, &created.expect(201)?, &maker).await?;
    // The taker's session ends (its expiry passed): the cleanup removes its wallet and times
    // the session's life. Then one retention run.
    let taker_session: uuid::Uuid =
        sqlx::query_scalar("select taker_session_id from offers where id = $1")
            .bind(id)
            .fetch_one(&h.pool)
            .await
            .expect("taker session");
    h.expire_session(taker_session).await;
    let mut cleaned = 0.0;
    for _ in 0..120 {
        cleaned = total(
            &openpleb_common::metrics::render(),
            names::SESSIONS_CLEANED,
            &[],
        );
        if cleaned > 0.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(cleaned > 0.0, "the taker's session was never cleaned");
    openpleb_worker::jobs::prune::run(&h.trade_ctx())
        .await
        .expect("prune");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    // The admin listener's scrape: no credentials, Prometheus text.
    let resp = h.admin.get("/metrics").send().await;
    resp.assert_status_is_ok();
    let text = resp.0.into_body().into_string().await.expect("text");
    let positive = |name: &str, having: &[&str]| {
        let v = total(&text, name, having);
        assert!(v > 0.0, "{name}{having:?} = {v}\n{text}");
    };
    positive(
        "openpleb_http_requests_total",
        &["listener=\"public\"", "method=\"POST\"", "status=\"201\""],
    );
    positive("openpleb_http_request_duration_seconds_count", &[]);
    positive(
        "openpleb_http_request_duration_seconds_bucket",
        &["le=\"+Inf\""],
    );
    // Route templates, not paths: no offer id in any label.
    assert!(
        !text.contains(&id.to_string()),
        "a raw path leaked into a label"
    );
    assert!(
        samples(&text, "openpleb_http_requests_total")
            .iter()
            .any(|(l, _)| l.contains("route=\"/api/v1/offers/") && l.contains("/complete\"")),
        "the complete route's template is a label"
    );
    positive(
        "openpleb_wallet_operations_total",
        &["kind=\"create_locked_quote\"", "result=\"ok\""],
    );
    positive(
        "openpleb_wallet_operations_total",
        &["kind=\"send_recorded\"", "result=\"ok\""],
    );
    positive("openpleb_wallet_operation_duration_seconds_count", &[]);
    positive(
        "openpleb_jobs_run_total",
        &["queue=\"openpleb.release_payouts\"", "outcome=\"ok\""],
    );
    positive("openpleb_job_duration_seconds_count", &[]);
    positive("openpleb_offers_created_total", &[]);
    positive("openpleb_offers_settled_total", &["outcome=\"COMPLETED\""]);
    positive("openpleb_offer_duration_seconds_count", &[]);
    positive("openpleb_bat_verifications_total", &["result=\"ok\""]);
    positive("openpleb_bat_verification_duration_seconds_count", &[]);
    assert_eq!(
        total(&text, "openpleb_offers", &["status=\"COMPLETED\""]),
        1.0
    );
    assert_eq!(
        total(&text, "openpleb_offers", &["status=\"INVOICE_PAID\""]),
        1.0
    );
    assert_eq!(
        total(&text, "openpleb_offers", &["status=\"DISPUTED\""]),
        0.0
    );
    positive("openpleb_sessions_active", &[]);
    positive("openpleb_session_wallets", &[]);
    positive("openpleb_ecash_held_sats", &[]);
    positive("openpleb_db_up", &[]);
    positive("openpleb_db_pool_connections", &["state=\"max\""]);
    // The api opens no wallet: `openpleb_wallets_open` is the workers' (their own scrape).
    for series in ["openpleb_jobs", "openpleb_payouts_overdue"] {
        assert!(!samples(&text, series).is_empty(), "{series} is reported");
    }
    assert_eq!(
        total(
            &text,
            "openpleb_jobs",
            &["queue=\"openpleb.prune\"", "state=\"dead\""]
        ),
        0.0
    );
    positive("openpleb_sessions_cleaned_total", &[]);
    positive("openpleb_session_duration_seconds_count", &[]);
    positive(
        "openpleb_db_query_duration_seconds_count",
        &["op=\"select\""],
    );
    positive(
        "openpleb_db_query_duration_seconds_count",
        &["op=\"update\""],
    );
    positive("openpleb_db_pool_wait_seconds_count", &[]);
    // One trade settled, no issue raised; the average is the two gauges' quotient.
    assert_eq!(total(&text, names::TRADES_SETTLED_24H, &[]), 1.0);
    assert_eq!(total(&text, names::DISPUTES_24H, &[]), 0.0);
    assert_eq!(total(&text, names::DISPUTES_WAITING_ADMIN, &[]), 0.0);
    let average = total(&text, names::ECASH_HELD, &[]) / total(&text, names::SESSION_WALLETS, &[]);
    assert!(
        (total(&text, names::ECASH_PER_WALLET, &[]) - average).abs() < 1e-9,
        "{average}\n{text}"
    );
    // Every exported metric this moved is in the scrape, described and typed; only these are
    // not (cleanup.rs archives wallets, treasury.rs meets a token spent elsewhere and
    // withdraws, mint_promises.rs a quote issued elsewhere, the notification tests deliver
    // notices; the api opens no wallet, so the open-wallets gauge is the workers' scrape's).
    let unmoved = [
        names::WALLETS_OPEN,
        names::WALLETS_ARCHIVED,
        names::PLATFORM_TOKENS_SPENT_ELSEWHERE,
        names::QUOTES_ISSUED_ELSEWHERE,
        names::TREASURY_WITHDRAWALS,
        names::NOTICES_SENT,
        names::NOTICES_FAILED,
        names::NOTICE_DELIVERY_DURATION,
    ];
    for name in names::ALL.iter().filter(|n| !unmoved.contains(n)) {
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "no HELP for {name}\n{text}"
        );
        assert!(
            text.contains(&format!("# TYPE {name} ")),
            "no TYPE for {name}\n{text}"
        );
        let series = if names::HISTOGRAMS.contains(name) {
            format!("{name}_count")
        } else {
            (*name).to_owned()
        };
        assert!(!samples(&text, &series).is_empty(), "no {series} sample");
    }

    // The worker's own listener.
    let scraped = http_get(&worker_addr, "/metrics").await;
    assert!(scraped.starts_with("HTTP/1.0 200") || scraped.starts_with("HTTP/1.1 200"));
    assert!(scraped.contains("openpleb_jobs_run_total"));

    // Admin requests are counted too, by their own listener label.
    h.get("/admin/alerts", Auth::Admin).await?.expect(200)?;
    h.stop().await;

    // One trade, followed by its id from the api into the worker.
    let logs = capture.text();
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| in_span(l, "request", "trade-corr-0001")),
        "the api's lines of the request carry its id"
    );
    assert!(
        lines.iter().any(|l| in_span(l, "job", "trade-corr-0001")),
        "the worker's lines of the jobs it caused carry the id"
    );
    Ok(())
}
