//! What the outage tests share: free ports, a private PostgreSQL cluster the test stops and
//! starts, the api binary as a child process, a worker in this process (the binary's own
//! start-up: lazy pool, wallet manager, `run`), and plain HTTP with headers.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cdk::nuts::SecretKey;
use openpleb_common::bootstrap;
use openpleb_common::config::Config;
use openpleb_devkit::client::Endpoints;
use openpleb_devkit::oidc::{DevOidc, DevOidcOptions};
use openpleb_devkit::scenario::http::HttpStack;
use openpleb_devkit::scenario::trade::invoice;
use openpleb_devkit::scenario::{party, Party, Trade};
use openpleb_devkit::stack::DEV_SERVICE_SECRET;
use openpleb_worker::{run, WorkerContext};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
pub const OIDC_TOKEN: &str = "test-oidc-token-0123456789";

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Polls `probe` every 200 ms until it holds or `within` has passed; how long it took.
pub async fn wait_until<F, Fut>(within: Duration, what: &str, mut probe: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if probe().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }
}

/// `method` `http://addr/path` over a fresh connection, with an optional bearer and JSON body.
pub async fn http(
    method: &str,
    addr: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<&Value>,
) -> Answer {
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(token) = bearer {
        req.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").expect("a full answer");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let payload = if chunked {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    let body = serde_json::from_str(&payload).unwrap_or(Value::String(payload));
    Answer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

/// A private PostgreSQL cluster under a temporary directory on its own port, which the test
/// stops and starts (initdb and postgres refuse to run as root: as user `postgres` then).
pub struct Cluster {
    _dir: tempfile::TempDir,
    data: PathBuf,
    bin: PathBuf,
    pub port: u16,
}

impl Cluster {
    /// A new cluster, initialised and started.
    pub fn start() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL installed under /usr/lib/postgresql")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("initdb").exists())
            .max()
            .expect("an initdb");
        let dir = tempfile::tempdir().expect("dir");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("data dir");
        if is_root() {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
                .expect("chmod");
            let ok = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(&data)
                .status()
                .expect("chown");
            assert!(ok.success(), "chown the data directory to postgres");
        }
        let cluster = Self {
            _dir: dir,
            data,
            bin,
            port: free_port(),
        };
        cluster.pg("initdb", &["-U", "postgres", "--auth=trust", "-D"], true);
        cluster.up();
        cluster
    }

    fn pg(&self, tool: &str, args: &[&str], with_data: bool) {
        let exe = self.bin.join(tool);
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        cmd.args(args);
        if with_data {
            cmd.arg(&self.data);
        }
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{tool}: {e}"));
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the server and waits until it accepts connections.
    pub fn up(&self) {
        let log = self.data.join("server.log");
        let opts = format!("-c listen_addresses=127.0.0.1 -p {} -k /tmp", self.port);
        let log = log.to_string_lossy().into_owned();
        self.pg(
            "pg_ctl",
            &["-w", "-l", &log, "-o", &opts, "start", "-D"],
            true,
        );
    }

    /// Stops the server at once (`-m fast`: open sessions are ended, as in a crash of the
    /// connections, while the data stays consistent).
    pub fn down(&self) {
        self.pg("pg_ctl", &["-w", "-m", "fast", "stop", "-D"], true);
    }

    /// The URL of database `db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates database `db`.
    pub async fn create_database(&self, db: &str) {
        let pool = sqlx::PgPool::connect(&self.url("postgres"))
            .await
            .expect("connect to the cluster");
        sqlx::query(sqlx::AssertSqlSafe(format!("create database \"{db}\"")))
            .execute(&pool)
            .await
            .expect("create database");
        pool.close().await;
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let exe = self.bin.join("pg_ctl");
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        let _ = cmd
            .args(["-m", "immediate", "stop", "-D"])
            .arg(&self.data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The api binary, serving on loopback; killed when dropped.
pub struct ApiProcess {
    child: Child,
    pub public: String,
    pub admin: String,
    log: PathBuf,
}

/// The environment an api is given of the workers' keys: public keys only.
pub fn api_keys() -> Vec<(&'static str, String)> {
    let keys = openpleb_devkit::test_public_keys();
    vec![
        ("QUOTE_LOCK_XPUB", keys.quote_locks.to_string()),
        ("TOKEN_SEAL_PUBKEY", keys.token_seal.to_hex()),
        ("TREASURY_PUBKEY", keys.treasury.to_string()),
    ]
}

/// The api binary as a deployment starts it (the workers' public keys, no wallet secret),
/// against `db_url` and `mint_url` on free ports, logging off; a test adds what it checks.
pub fn api_command(db_url: &str, mint_url: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_openpleb-api"));
    cmd.env_clear()
        .env("DATABASE_URL", db_url)
        .env("MINT_URL", mint_url)
        .envs(api_keys())
        .env("REPUTATION_SECRET", "cd".repeat(32))
        .env("DATA_SECRETS", format!("1:{}", "da".repeat(32)))
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .env("OIDC_API_TOKEN", OIDC_TOKEN)
        .env("PRICE_FIXED", "60000")
        .env("API_PORT", free_port().to_string())
        .env("ADMIN_PORT", free_port().to_string())
        .env("RUST_LOG", "off");
    cmd
}

impl ApiProcess {
    /// Starts `openpleb-api` against `db_url` and `mint_url`, its admin listener on
    /// `admin_port` (where the dev issuer asks about pubkeys), logging into `dir`.
    pub fn start(db_url: &str, mint_url: &str, dir: &Path, admin_port: u16) -> Self {
        let public_port = free_port();
        let log = dir.join("api.log");
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_openpleb-api"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", db_url)
            .env("DATABASE_POOL_SIZE", "10")
            .env("MINT_URL", mint_url)
            // Only the workers' public keys: the api refuses a wallet secret or volume.
            .envs(api_keys())
            .env("REPUTATION_SECRET", "17".repeat(32))
            .env("DATA_SECRETS", format!("1:{}", "da".repeat(32)))
            .env("ADMIN_TOKEN", ADMIN_TOKEN)
            .env("OIDC_API_TOKEN", OIDC_TOKEN)
            .env("PRICE_FIXED", "60000")
            .env("API_HOST", "127.0.0.1")
            .env("API_PORT", public_port.to_string())
            .env("ADMIN_PORT", admin_port.to_string())
            .env("RATE_LIMIT_ANONYMOUS", "1000000")
            .env("RATE_LIMIT_AUTHENTICATED", "1000000")
            .env("RUST_LOG", "info")
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("spawn openpleb-api");
        Self {
            child,
            public: format!("127.0.0.1:{public_port}"),
            admin: format!("127.0.0.1:{admin_port}"),
            log,
        }
    }

    /// Whether the process is still the one started (it never exited).
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Panics unless it is still running, with its log.
    pub fn assert_running(&mut self) {
        if !self.running() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            panic!("the api exited by itself; its log:\n{log}");
        }
    }

    /// The client's view of it.
    pub fn endpoints(&self, mint: &str, issuer: &str) -> Endpoints {
        Endpoints {
            api: format!("http://{}/api/v1", self.public),
            admin: format!("http://{}/api/v1", self.admin),
            admin_token: ADMIN_TOKEN.to_owned(),
            mint: mint.to_owned(),
            issuer: issuer.to_owned(),
        }
    }

    /// `GET /ready` (with `query`), waiting until the listener answers at all.
    pub async fn ready(&self, query: &str) -> Answer {
        http("GET", &self.public, &format!("/ready{query}"), None, None).await
    }

    /// Waits until `/health` answers.
    pub async fn wait_listening(&mut self) {
        let started = Instant::now();
        loop {
            self.assert_running();
            if tokio::net::TcpStream::connect(&self.public).await.is_ok()
                && http("GET", &self.public, "/health", None, None)
                    .await
                    .status
                    == 200
            {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the api did not listen"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The value of `openpleb_dependency_up{dependency="<dep>"}` in its admin scrape.
    pub async fn dependency_gauge(&self, dep: &str) -> Option<f64> {
        let scrape = http("GET", &self.admin, "/metrics", None, None).await;
        let text = scrape.body.as_str().unwrap_or_default().to_owned();
        let series = format!("openpleb_dependency_up{{dependency=\"{dep}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&series))
            .and_then(|v| v.trim().parse().ok())
    }
}

impl Drop for ApiProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A worker in this process, started as the binary starts one (lazy pool, wallet manager with
/// its own view of the dependencies, `run`), polling quickly.
pub struct Worker {
    pub ctx: Arc<WorkerContext>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Worker {
    pub async fn start(mut config: Config, wallets_dir: &Path) -> Self {
        // Its logs only when asked for (RUST_LOG=...), to keep test output readable.
        if std::env::var_os("RUST_LOG").is_some() {
            openpleb_common::telemetry::init(openpleb_common::config::LogFormat::Text);
        }
        let w = &mut config.worker;
        w.concurrency = 4;
        w.quote_poll_interval = Duration::from_millis(500);
        w.queue_poll_interval = Duration::from_millis(200);
        let config = Arc::new(config);
        let pool = bootstrap::database(&config.database).expect("pool");
        let settings = openpleb_devkit::test_wallets_config(wallets_dir);
        let wallets = bootstrap::wallets(&config, &settings, pool.clone())
            .await
            .expect("wallets");
        let ctx = Arc::new(WorkerContext::from_config(pool, wallets, config));
        let (tx, rx) = oneshot::channel::<()>();
        let name = format!("outage-{}", uuid::Uuid::new_v4().simple());
        let run_ctx = ctx.clone();
        let task = tokio::spawn(async move {
            run(run_ctx, &name, async move {
                let _ = rx.await;
            })
            .await
        });
        Self {
            ctx,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Panics if `run` returned: a worker never ends by itself.
    pub fn assert_running(&self) {
        let finished = self.task.as_ref().is_none_or(|t| t.is_finished());
        assert!(!finished, "the worker ended by itself");
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
        }
        self.ctx.pool.close().await;
    }
}

/// The URL of the per-test database `conn` names, on the server of `DATABASE_URL`.
pub fn database_url(conn: &sqlx::postgres::PgConnectOptions) -> String {
    let master = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let server = master.rsplit_once('/').map_or(master.as_str(), |(s, _)| s);
    format!("{server}/{}", conn.get_database().expect("database name"))
}

/// A well-formed BAT the mint never signed: enough to reach the point where the mint is asked.
pub fn unsigned_bat() -> String {
    openpleb_devkit::scenario::party::made_up_bat()
}

/// The api process over HTTP as the scenario builders drive it (the tests pay the invoices).
pub fn over_http(env: &Endpoints) -> HttpStack {
    HttpStack {
        env: env.clone(),
        pay_url: None,
    }
}

/// Creates a fiat provider through the admin API; its id.
pub async fn provider(env: &Endpoints) -> String {
    let id = party::provider(&over_http(env)).await.expect("provider");
    id.to_string()
}

/// `maker`'s offer of 15.00 EUR naming `provider`, its payouts locked to `key` and its deposit
/// unpaid: the answer to `POST /offers`.
pub async fn create_offer(
    env: &Endpoints,
    maker: &Party,
    provider: &str,
    key: &SecretKey,
) -> Value {
    let http = over_http(env);
    let provider = provider.parse().expect("provider id");
    let plan = Trade::new(&http)
        .maker(maker)
        .maker_key(key)
        .provider(provider);
    let plan = plan
        .fiat(1_500)
        .field("paymentDetails", json!("IBAN DE89 3704 0044 0532 0130 00"));
    plan.await.expect("offer").created
}

/// [`create_offer`], its deposit paid at `mint` and applied: (its id, the answer).
pub async fn funded_offer(
    env: &Endpoints,
    mint: &openpleb_devkit::DevMint,
    maker: &Party,
    provider: &str,
    key: &SecretKey,
) -> (String, Value) {
    let created = create_offer(env, maker, provider, key).await;
    let id = created["offer"]["id"].as_str().expect("id").to_owned();
    let (invoice, sats) = invoice(&created["deposit"]).expect("deposit");
    mint.pay_invoice(&invoice, sats).await.expect("pay");
    wait_status(env, &maker.bat, &id, "INVOICE_PAID").await;
    (id, created)
}

/// The dev OIDC issuer, asking the api's admin listener on `admin_port` about pubkeys.
pub async fn issuer(admin_port: u16) -> DevOidc {
    DevOidc::start(DevOidcOptions {
        listen: ([127, 0, 0, 1], 0).into(),
        backend_admin_url: format!("http://127.0.0.1:{admin_port}/api/v1"),
        backend_token: OIDC_TOKEN.to_owned(),
        service_secret: DEV_SERVICE_SECRET.to_owned(),
    })
    .await
    .expect("issuer")
}

/// The offer `id` as `bat`'s session sees it.
pub async fn offer_status(env: &Endpoints, bat: &str, id: &str) -> String {
    let url = format!("{}/offers/{id}", env.api);
    match openpleb_devkit::client::request("GET", &url, Some(bat), None).await {
        Ok(v) => v["status"].as_str().unwrap_or_default().to_owned(),
        Err(_) => String::new(),
    }
}

/// Waits until offer `id` is `status` (as `bat`'s session sees it).
pub async fn wait_status(env: &Endpoints, bat: &str, id: &str, status: &str) {
    let what = format!("offer {id} {status}");
    wait_until(Duration::from_secs(60), &what, || async {
        offer_status(env, bat, id).await == status
    })
    .await;
}
