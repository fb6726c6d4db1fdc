//! What a caller without a session can make the api do: IPv6 clients share one budget per
//! network prefix; a made-up bearer token costs a database look-up only while its address has
//! budget left; `/stats` is answered from memory; an upload is read only once the caller is
//! known to be the party allowed to upload it.
//!
//! "Without a look-up" is checked by locking the table the look-up would read: a request that
//! still answers promptly never touched it.

mod common;

use openpleb_devkit::scenario::party::made_up_bat;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{body, Harness};
use openpleb_api::{public_app, AppState};
use openpleb_common::mint::MintClient;
use openpleb_devkit::{test_config, DevMint};
use poem::http::StatusCode;
use poem::listener::TcpAcceptor;
use poem::test::TestClient;
use poem::{Body, Server};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

/// Longest a refusal that needs no database and no body may take.
const PROMPT: Duration = Duration::from_secs(3);

/// An api over `pool` with the configuration adjusted by `adjust`.
fn state(
    pool: PgPool,
    mint_url: &str,
    adjust: impl FnOnce(&mut openpleb_common::config::Config),
) -> AppState {
    let mut config = test_config("postgres://unused", mint_url);
    adjust(&mut config);
    AppState::new(
        Arc::new(config),
        pool,
        MintClient::new(mint_url).expect("mint url"),
    )
    .expect("app state")
}

/// The status of `GET /api/v1/config` sent to `addr` by a proxy that says the client is
/// `client` (a real socket: the in-process client has no peer address).
async fn status_for(addr: std::net::SocketAddr, client: &str) -> u16 {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "GET /api/v1/config HTTP/1.1\r\nHost: test\r\nX-Forwarded-For: {client}\r\n\
         Connection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).await.expect("read");
    let text = String::from_utf8_lossy(&answer);
    text.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text}"))
}

/// Addresses of one IPv6 /64 share the anonymous budget (a client gets 2^64 of them); the
/// next /64 and IPv4 addresses have their own.
#[sqlx::test(migrator = "openpleb_common::db::MIGRATOR")]
async fn ipv6_clients_share_a_budget_per_prefix(pool: PgPool) {
    let mint = DevMint::start().await.expect("mint");
    let state = state(pool, &mint.url, |c| {
        c.api.rate_limits.anonymous = 2;
        // The test's connection comes from loopback, a trusted proxy by default.
        c.api.rate_limits.trust_forwarded_for = true;
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let acceptor = TcpAcceptor::from_tokio(listener).expect("acceptor");
    let app = public_app(state);
    tokio::spawn(async move {
        let _ = Server::new_with_acceptor(acceptor).run(app).await;
    });

    assert_eq!(status_for(addr, "2001:db8:1:2::1").await, 200);
    assert_eq!(status_for(addr, "2001:db8:1:2:ffff:ffff:ffff:9").await, 200);
    assert_eq!(
        status_for(addr, "2001:db8:1:2::77").await,
        429,
        "a third address of the same /64 is the same client"
    );
    assert_eq!(status_for(addr, "2001:db8:1:3::1").await, 200, "next /64");
    assert_eq!(status_for(addr, "192.0.2.1").await, 200);
    assert_eq!(status_for(addr, "192.0.2.2").await, 200);
    assert_eq!(status_for(addr, "192.0.2.2").await, 200);
    assert_eq!(
        status_for(addr, "192.0.2.2").await,
        429,
        "IPv4: per address"
    );
    mint.stop().await.expect("stop");
}

/// A bearer token that names no session counts against its address; once the address has
/// spent its budget, such a request is refused before the token is looked up.
#[sqlx::test(migrator = "openpleb_common::db::MIGRATOR")]
async fn made_up_bearers_past_the_budget_are_refused_without_a_lookup(pool: PgPool) {
    let mint = DevMint::start().await.expect("mint");
    let app = public_app(state(pool.clone(), &mint.url, |c| {
        c.api.rate_limits.anonymous = 3;
    }));
    let client = TestClient::new(app);
    for _ in 0..3 {
        client
            .get("/api/v1/config")
            .header("Authorization", format!("Bearer {}", made_up_bat()))
            .send()
            .await
            .assert_status_is_ok();
    }
    // Every session look-up waits on this lock until it is released.
    let mut locker = pool.begin().await.expect("begin");
    sqlx::query("lock table sessions in access exclusive mode")
        .execute(&mut *locker)
        .await
        .expect("lock");
    let resp = tokio::time::timeout(
        PROMPT,
        client
            .get("/api/v1/config")
            .header("Authorization", format!("Bearer {}", made_up_bat()))
            .send(),
    )
    .await
    .expect("refused without waiting for the sessions table");
    common::expect_error(resp, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    locker.rollback().await.expect("unlock");
    mint.stop().await.expect("stop");
}

/// `/stats` is counted at most once per cache period: with the counted tables locked, a
/// burst of reads is still answered at once, from the count taken before.
#[sqlx::test(migrator = "openpleb_common::db::MIGRATOR")]
async fn stats_are_answered_from_memory(pool: PgPool) {
    let mint = DevMint::start().await.expect("mint");
    let client = Arc::new(TestClient::new(public_app(state(
        pool.clone(),
        &mint.url,
        |c| c.api.rate_limits.anonymous = 100_000,
    ))));
    let resp = client.get("/api/v1/stats").send().await;
    resp.assert_status_is_ok();
    let first = body(resp).await;

    let mut locker = pool.begin().await.expect("begin");
    sqlx::query("lock table offers, users in access exclusive mode")
        .execute(&mut *locker)
        .await
        .expect("lock");
    let burst = (0..50).map(|_| {
        let client = client.clone();
        tokio::spawn(async move {
            let resp = client.get("/api/v1/stats").send().await;
            resp.assert_status_is_ok();
            body(resp).await
        })
    });
    let answers = tokio::time::timeout(PROMPT, futures::future::join_all(burst))
        .await
        .expect("answered without counting again");
    for answer in answers {
        assert_eq!(answer.expect("task"), first);
    }
    locker.rollback().await.expect("unlock");
    mint.stop().await.expect("stop");
}

/// A multipart body that sends its first bytes and then never ends: only a request refused
/// without reading its body gets an answer.
fn endless_body() -> Body {
    let start = futures::stream::once(async {
        Ok::<_, std::io::Error>(Bytes::from_static(
            b"--x\r\nContent-Disposition: form-data; name=\"image\"; filename=\"r.png\"\r\n\
              Content-Type: image/png\r\n\r\n",
        ))
    });
    Body::from_bytes_stream(futures::StreamExt::chain(start, futures::stream::pending()))
}

/// An upload from anyone but the party allowed to make it is refused, with the status and
/// code the handler gives, before its body is read; the party's own upload goes through.
#[sqlx::test(migrations = false)]
async fn uploads_are_read_only_from_the_party(opts: PgPoolOptions, conn: PgConnectOptions) {
    let h = Harness::start(opts, conn).await;
    let provider = h.provider().await;
    let maker = h.session().await;
    let taker = h.session().await;
    let stranger = h.session().await;
    let (id, _) = h.funded_offer(&maker, provider).await;
    h.claim(id, &taker).await;
    h.wait_status(id, &taker, "TAKER_BOND_PAID").await;

    let receipt = format!("/api/v1/offers/{id}/receipt");
    let evidence = format!("/api/v1/offers/{id}/dispute/evidence");
    let unknown = format!("/api/v1/offers/{}/receipt", Uuid::new_v4());
    let made_up = format!("Bearer {}", made_up_bat());
    let cases: Vec<(&str, &String, Option<String>, StatusCode, &str)> = vec![
        (
            "no bearer",
            &receipt,
            None,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            "made-up bearer",
            &receipt,
            Some(made_up.clone()),
            StatusCode::UNAUTHORIZED,
            "invalid_session",
        ),
        (
            "not a BAT",
            &receipt,
            Some("Bearer nonsense".to_owned()),
            StatusCode::UNAUTHORIZED,
            "malformed_bat",
        ),
        (
            "a stranger",
            &receipt,
            Some(stranger.bearer()),
            StatusCode::NOT_FOUND,
            "offer_not_found",
        ),
        (
            "the maker",
            &receipt,
            Some(maker.bearer()),
            StatusCode::FORBIDDEN,
            "not_your_role",
        ),
        (
            "an unknown offer",
            &unknown,
            Some(taker.bearer()),
            StatusCode::NOT_FOUND,
            "offer_not_found",
        ),
        (
            "evidence without a bearer",
            &evidence,
            None,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            "evidence from a stranger",
            &evidence,
            Some(stranger.bearer()),
            StatusCode::NOT_FOUND,
            "offer_not_found",
        ),
    ];
    for (who, path, bearer, status, code) in cases {
        let mut req = h
            .public
            .post(path)
            .content_type("multipart/form-data; boundary=x")
            .body(endless_body());
        if let Some(b) = bearer {
            req = req.header("Authorization", b);
        }
        let resp = tokio::time::timeout(PROMPT, req.send())
            .await
            .unwrap_or_else(|_| panic!("{who}: the body was read before refusing"));
        let got = resp.0.status();
        let v = body(resp).await;
        assert_eq!(
            (got, v["error"]["code"].as_str()),
            (status, Some(code)),
            "{who}: {v}"
        );
    }
    h.upload_receipt(id, &taker).await.assert_status_is_ok();
    h.stop().await;
}
