//! Opening sessions against a slow mint: a BAT is spent at the mint with no database
//! connection held, so many opens waiting on the mint leave the pool to everyone else.
//!
//! The mint is the real dev mint behind a TCP proxy that holds each of its answers back.

mod common;

use openpleb_devkit::scenario::party::made_up_bat;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{body, Auth, Harness, Reply, Transport};
use openpleb_api::{public_app, AppState};
use openpleb_common::mint::MintClient;
use openpleb_devkit::scenario::in_process::{self, Client};
use openpleb_devkit::scenario::{party, Call, Method};
use openpleb_devkit::test_config;
use poem::http::StatusCode;
use poem::test::TestClient;
use poem::EndpointExt;
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A TCP proxy in front of the mint that delays every answer by a settable time.
struct SlowProxy {
    url: String,
    delay_ms: Arc<AtomicU64>,
}

impl SlowProxy {
    async fn start(mint_url: &str) -> Self {
        let upstream: SocketAddr = mint_url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("mint address");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let delay = delay_ms.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, upstream, delay.clone()));
            }
        });
        Self { url, delay_ms }
    }

    fn set_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.delay_ms.store(ms, Ordering::SeqCst);
    }
}

/// Copies both ways; the first bytes of each answer wait for the delay.
async fn relay(client: TcpStream, upstream: SocketAddr, delay_ms: Arc<AtomicU64>) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let asked = Arc::new(AtomicBool::new(false));
    let asking = asked.clone();
    let up = async move {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n) = client_read.read(&mut buf).await {
            if n == 0 {
                break;
            }
            asking.store(true, Ordering::SeqCst);
            if server_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = server_write.shutdown().await;
    };
    let down = async move {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n) = server_read.read(&mut buf).await {
            if n == 0 {
                break;
            }
            if asked.swap(false, Ordering::SeqCst) {
                let ms = delay_ms.load(Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            if client_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = client_write.shutdown().await;
    };
    tokio::join!(up, down);
}

/// `n` BATs of one registered, logged-in trader.
async fn bats(h: &Harness, n: u64) -> Vec<String> {
    let trader = party::registered(h).await.expect("registered");
    h.bats(&trader, n).await.expect("BATs")
}

/// `POST /sessions` with `bat` at `api`.
async fn open(api: &Client, bat: &str) -> Reply {
    let call = Call::new(Method::Post, "/sessions", Auth::Anonymous).json(json!({ "bat": bat }));
    in_process::send(api, call).await
}

/// An api whose mint is behind `proxy`, with the configured pool size and the book cache off
/// (so every `GET /offers` needs a connection); the mint's set-up is checked while it is quick.
async fn api_behind(proxy: &SlowProxy, mint: MintClient, conn: PgConnectOptions) -> Client {
    let mut config = test_config("postgres://unused", &proxy.url);
    config.api.book_cache = Duration::ZERO;
    config.api.rate_limits.anonymous = 100_000;
    let pool = openpleb_common::db::pool_options(config.database.pool_size)
        .connect_with(conn)
        .await
        .expect("pool");
    let state = AppState::new(Arc::new(config), pool, mint).expect("app state");
    // The set-up is read once and kept; the spends are what is slow.
    state.ensure_blind_auth().await.expect("blind auth set up");
    TestClient::new(public_app(state).map_to_response().boxed())
}

/// With the mint answering in 5 s, 30 concurrent `POST /sessions` leave `GET /offers` (the
/// book cache off, so each read needs a connection from the api's pool of the configured
/// size) answering in under a second; every session opens.
#[sqlx::test(migrations = false)]
async fn sessions_opening_at_a_slow_mint_leave_the_pool_to_readers(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let h = Harness::start(opts, conn.clone()).await;
    let bats = bats(&h, 30).await;
    let proxy = SlowProxy::start(&h.stack.mint.url).await;
    let mint = MintClient::new(&proxy.url).expect("mint url");
    let api = Arc::new(api_behind(&proxy, mint, conn).await);
    api.get("/api/v1/offers").send().await.assert_status_is_ok();

    proxy.set_delay(Duration::from_secs(5));
    let opens: Vec<_> = bats
        .into_iter()
        .map(|bat| {
            let api = api.clone();
            tokio::spawn(async move { open(&api, &bat).await })
        })
        .collect();
    // Let every open reach the mint.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut worst = Duration::ZERO;
    let mut reads = 0;
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        let started = Instant::now();
        let resp = api.get("/api/v1/offers").send().await;
        let took = started.elapsed();
        let status = resp.0.status();
        assert_eq!(status, StatusCode::OK, "{}", body(resp).await);
        worst = worst.max(took);
        reads += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("GET /offers during 30 slow session opens: {reads} reads, slowest {worst:?}");
    assert!(
        worst < Duration::from_secs(1),
        "GET /offers took {worst:?} while sessions waited on the mint"
    );
    for opened in futures::future::join_all(opens).await {
        opened.expect("task").expect(201).expect("opened");
    }
    h.stop().await;
}

/// The status and error code of opening a session with `bat`.
async fn tried(api: &Client, bat: &str) -> (u16, String) {
    let reply = open(api, bat).await;
    let code = reply.body["error"]["code"].as_str().unwrap_or_default();
    (reply.status, code.to_owned())
}

/// A spend the mint does not answer in time burns its BAT: refused on retry though the mint
/// is quick again. A BAT the mint refused leaves nothing behind and is refused again.
#[sqlx::test(migrations = false)]
async fn an_unanswered_spend_burns_its_bat(opts: PgPoolOptions, conn: PgConnectOptions) {
    let h = Harness::start(opts, conn.clone()).await;
    let bats = bats(&h, 2).await;
    let proxy = SlowProxy::start(&h.stack.mint.url).await;
    let mint = MintClient::new(&proxy.url)
        .expect("mint url")
        .with_spend_timeout(Duration::from_secs(1));
    let api = api_behind(&proxy, mint, conn).await;

    proxy.set_delay(Duration::from_secs(2));
    let (status, code) = tried(&api, &bats[0]).await;
    assert_eq!((status, code.as_str()), (503, "mint_unavailable"));
    proxy.set_delay(Duration::ZERO);
    let (status, code) = tried(&api, &bats[0]).await;
    assert_eq!((status, code.as_str()), (409, "bat_already_used"), "burnt");

    let made_up = made_up_bat();
    for _ in 0..2 {
        let (status, code) = tried(&api, &made_up).await;
        assert_eq!((status, code.as_str()), (401, "invalid_bat"));
    }
    let (pending, spent): (i64, i64) = sqlx::query_as(
        "select count(*) filter (where spent_at is null), count(*) filter (where spent_at is not null)
           from bat_redemptions",
    )
    .fetch_one(&h.pool)
    .await
    .expect("count");
    assert_eq!(
        pending, 1,
        "only the unanswered spend's BAT stays recorded, burnt"
    );

    let (status, _) = tried(&api, &bats[1]).await;
    assert_eq!(status, 201);
    let now_spent: i64 =
        sqlx::query_scalar("select count(*) from bat_redemptions where spent_at is not null")
            .fetch_one(&h.pool)
            .await
            .expect("count");
    assert_eq!(now_spent, spent + 1);
    h.stop().await;
}
