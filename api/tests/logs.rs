//! Secrets never reach a log: this test binary captures every log line (debug level, all
//! crates, cdk and sqlx included) while the identity chain and wallet operations run, in both
//! formats (`LOG_FORMAT=text` and `json`, two layers on one subscriber), then greps each
//! capture for each secret it handled. The JSON capture must also parse line by line and
//! carry the requests' correlation ids.

use std::sync::Arc;

use cdk::nuts::SecretKey;
use openpleb_api::{admin_app, public_app, AppState};
use openpleb_common::mint::MintClient;
use openpleb_common::wallet::{MintOutcome, WalletId};
use openpleb_devkit::capture::Capture;
use openpleb_devkit::stack::AuthStack;
use openpleb_devkit::{test_config, wallet_manager, DevMint, Trader};
use poem::http::StatusCode;
use poem::listener::TcpAcceptor;
use poem::test::TestClient;
use poem::Server;
use serde_json::json;
use sqlx::PgPool;

const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
const OIDC_TOKEN: &str = "test-oidc-token-0123456789";

#[sqlx::test(migrator = "openpleb_common::db::MIGRATOR")]
async fn no_secret_reaches_a_log(pool: PgPool) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let capture = Capture::default();
    let json_capture = Capture::default();
    let writer = capture.clone();
    let json_writer = json_capture.clone();
    // The same layers `telemetry::init` builds for each format.
    tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new("debug"))
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(move || writer.clone()),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(true)
                .with_writer(move || json_writer.clone()),
        )
        .init();

    // Identity chain.
    let mut stack = AuthStack::start(OIDC_TOKEN).await.expect("auth stack");
    let dir = tempfile::tempdir().expect("dir");
    let config = test_config("postgres://unused", &stack.mint.url);
    // The api never holds it; the workers of this deployment would.
    let master_secret = openpleb_devkit::TEST_MASTER_SECRET.to_owned();
    let state = AppState::new(
        Arc::new(config),
        pool.clone(),
        MintClient::new(&stack.mint.url).expect("mint"),
    )
    .expect("app state");
    let acceptor =
        TcpAcceptor::from_tokio(stack.admin_listener.take().expect("listener")).expect("acceptor");
    let admin_ep = admin_app(state.clone());
    tokio::spawn(async move {
        let _ = Server::new_with_acceptor(acceptor).run(admin_ep).await;
    });
    let public = TestClient::new(public_app(state.clone()));
    let admin = TestClient::new(admin_app(state));

    let resp = admin
        .post("/api/v1/admin/invite-codes")
        .header("Authorization", format!("Bearer {ADMIN_TOKEN}"))
        .body_json(&json!({}))
        .send()
        .await;
    resp.assert_status(StatusCode::CREATED);
    let invite: serde_json::Value =
        serde_json::from_str(&resp.0.into_body().into_string().await.expect("body")).expect("json");
    let code = invite["code"].as_str().expect("code").to_owned();
    let trader = Trader::new();
    public
        .post("/api/v1/users/register")
        .body_json(&trader.registration(&code))
        .send()
        .await
        .assert_status(StatusCode::CREATED);
    let cat = stack.login(&trader).await.expect("login");
    let bats = stack.mint_bats(&cat, 3).await.expect("BATs");
    public
        .post("/api/v1/sessions")
        .header("X-Request-Id", "logs-corr-0001")
        .body_json(&json!({"bat": bats[0]}))
        .send()
        .await
        .assert_status(StatusCode::CREATED);
    public
        .post("/api/v1/sessions/renew")
        .header("Authorization", format!("Bearer {}", bats[0]))
        .body_json(&json!({"bat": bats[1]}))
        .send()
        .await
        .assert_status_is_ok();
    // Failures log too: a replayed BAT and a wrong admin token.
    public
        .post("/api/v1/sessions")
        .body_json(&json!({"bat": bats[1]}))
        .send()
        .await
        .assert_status(StatusCode::CONFLICT);
    admin
        .get("/api/v1/admin/invite-codes")
        .header("Authorization", format!("Bearer {OIDC_TOKEN}"))
        .send()
        .await
        .assert_status(StatusCode::FORBIDDEN);

    // Wallet operations: mint, a P2PK-locked payout, redeeming it.
    let mint = DevMint::start().await.expect("mint");
    let wallets = wallet_manager(pool.clone(), &mint.url, dir.path(), 8);
    let maker = WalletId::session(uuid::Uuid::new_v4());
    let quote = wallets.create_mint_quote(&maker, 500).await.expect("quote");
    let mut minted = false;
    for _ in 0..40 {
        if let MintOutcome::Issued(_) = wallets
            .mint_quote(&maker, &quote.quote_id)
            .await
            .expect("mint")
        {
            minted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert!(minted);
    let payout_sk = SecretKey::generate();
    let key = payout_sk
        .public_key()
        .x_only_public_key()
        .to_string()
        .parse()
        .expect("key");
    let sent = wallets.send(&maker, 200, Some(key)).await.expect("send");
    let plain = wallets.send(&maker, 100, None).await.expect("send plain");
    let taker = WalletId::session(uuid::Uuid::new_v4());
    wallets
        .receive(&taker, &sent.token, vec![payout_sk.clone()])
        .await
        .expect("redeem");
    wallets.close_all().await;

    let logs = capture.text();
    assert!(
        logs.len() > 10_000,
        "the capture saw the run: {} bytes",
        logs.len()
    );
    let json_logs = json_capture.text();
    assert!(json_logs.len() > 10_000, "the JSON capture saw the run");
    let mut correlated = false;
    for line in json_logs.lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("a JSON log line does not parse ({e}): {line}"));
        assert!(
            v["level"].is_string() && v["timestamp"].is_string(),
            "{line}"
        );
        correlated |= v["spans"]
            .as_array()
            .is_some_and(|spans| spans.iter().any(|s| s["request_id"] == "logs-corr-0001"));
    }
    assert!(correlated, "the request's lines carry its correlation id");
    let mut secrets: Vec<(&str, String)> = vec![
        ("admin token", ADMIN_TOKEN.to_owned()),
        ("oidc-api token", OIDC_TOKEN.to_owned()),
        ("clear auth token", cat.clone()),
        ("wallet master secret", master_secret),
        (
            "treasury secret",
            openpleb_devkit::TEST_TREASURY_SECRET.to_owned(),
        ),
        (
            "trader secret key",
            trader.secret_key().display_secret().to_string(),
        ),
        ("payout secret key", payout_sk.to_secret_hex()),
        ("locked payout token", sent.token.clone()),
        ("plain token", plain.token.clone()),
    ];
    for (i, bat) in bats.iter().enumerate() {
        secrets.push(("BAT", bat.clone()));
        // The BAT's secret alone, whatever encoding a log might use.
        let parsed = cdk::nuts::BlindAuthToken::from_str(bat).expect("BAT");
        secrets.push(("BAT secret", parsed.auth_proof.secret.to_string()));
        let _ = i;
    }
    // The proofs inside the payout tokens: their secrets, however a log would print a proof.
    for token in [&sent.token, &plain.token] {
        let token = cdk::nuts::Token::from_str(token).expect("token");
        let keysets = mint.mint.keysets().keysets;
        let keyset_infos: Vec<_> = keysets
            .into_iter()
            .map(|k| cdk::nuts::KeySetInfo {
                id: k.id,
                unit: k.unit,
                active: k.active,
                input_fee_ppk: k.input_fee_ppk,
                final_expiry: k.final_expiry,
            })
            .collect();
        for proof in token.proofs(&keyset_infos).expect("proofs") {
            secrets.push(("proof secret", proof.secret.to_string()));
        }
    }
    // JWT signature part of the clear auth token, in case a log trims the rest.
    if let Some(sig) = cat.rsplit('.').next() {
        secrets.push(("clear auth token signature", sig.to_owned()));
    }
    for (what, secret) in &secrets {
        assert!(!secret.is_empty());
        assert!(
            !logs.contains(secret.as_str()),
            "a log line contains the {what}"
        );
        assert!(
            !json_logs.contains(secret.as_str()),
            "a JSON log line contains the {what}"
        );
    }
    mint.stop().await.expect("stop");
}

use std::str::FromStr;
