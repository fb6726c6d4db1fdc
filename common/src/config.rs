//! Environment variables to one validated [`Config`].
//!
//! Every setting the api and the worker read comes from here. A missing or malformed value is a
//! [`ConfigError`] that names the variable; the binaries print it as one line and exit with
//! code 2 (see [`exit_on_error`]). Secrets are kept out of `Debug` output.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::domain::money::{BasisPoints, FeeRule, FeeRules};
use crate::domain::offer::Timers;

/// Exit code for bad configuration (as `sysexits`' EX_USAGE family: the caller's mistake).
pub const CONFIG_EXIT_CODE: i32 = 2;

/// A configuration problem, always naming the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set.
    #[error("configuration error: {0} is required but not set")]
    Missing(&'static str),
    /// A variable is set but unusable.
    #[error("configuration error: {var} is invalid ({reason})")]
    Invalid {
        /// The variable.
        var: &'static str,
        /// What is wrong with it (never its value: it may be a secret).
        reason: String,
    },
}

/// A secret string whose `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret's value; callers must not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

/// Per-client request budgets per window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    /// Requests per window per client IP without a session.
    pub anonymous: u32,
    /// Requests per window per session.
    pub authenticated: u32,
    /// Requests per window per admin token.
    pub admin: u32,
    /// The window.
    pub window: Duration,
    /// Trust the left-most `X-Forwarded-For` address (only behind a proxy you run).
    pub trust_forwarded_for: bool,
}

/// The platform's own OIDC account, used to mint BATs for its wallets at a protected mint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceOidc {
    /// The issuer's token endpoint (client-credentials grant).
    pub token_url: String,
    /// Client id.
    pub client_id: String,
    /// Client secret.
    pub client_secret: Secret,
}

/// Where prices come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PriceConfig {
    /// One fixed price in minor units per BTC (tests and development only).
    Fixed(u64),
    /// The median of HTTP endpoints (`url|/json/pointer`).
    Http {
        /// Endpoints.
        endpoints: Vec<crate::price::PriceEndpoint>,
        /// Reuse a price this long.
        cache_for: Duration,
        /// Refuse a price older than this.
        max_age: Duration,
    },
}

/// The whole validated configuration, grouped by concern. Every default is set in this module
/// (in [`Config::from_lookup`] and the readers it calls) and nowhere else.
#[derive(Debug, Clone)]
pub struct Config {
    /// PostgreSQL.
    pub database: DatabaseConfig,
    /// The Cashu mint.
    pub mint: MintConfig,
    /// Session wallets.
    pub wallets: WalletsConfig,
    /// The HTTP listeners, sessions and the api's own credentials.
    pub api: ApiConfig,
    /// What the market accepts.
    pub limits: Limits,
    /// Per-state timers of offers.
    pub timers: Timers,
    /// Fees and bonds, frozen onto each offer at creation.
    pub fees: FeeRules,
    /// The price source.
    pub prices: PriceConfig,
    /// Job processing.
    pub worker: WorkerConfig,
}

/// PostgreSQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseConfig {
    /// Connection string (`DATABASE_URL`).
    pub url: Secret,
    /// Connections per process (`DATABASE_POOL_SIZE`).
    pub pool_size: u32,
}

/// The Cashu mint all ecash comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MintConfig {
    /// Its URL, without a trailing slash (`MINT_URL`).
    pub url: String,
    /// The mint unit; only `sat` is supported (`MINT_UNIT`).
    pub unit: String,
    /// Service OIDC account for BATs at a protected mint; `None` when the mint leaves the
    /// wallets' endpoints open (`SERVICE_OIDC_*`).
    pub service_oidc: Option<ServiceOidc>,
}

/// Session wallets: where their files live, how many stay open, and their leases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletsConfig {
    /// One or more directories that hold the session wallet shards (`WALLETS_DIR`).
    pub volumes: Vec<PathBuf>,
    /// Number of shard directories spread over the volumes (`WALLET_SHARDS`).
    pub shards: u32,
    /// Most session wallets one process keeps open at once (`WALLET_MAX_OPEN`).
    pub max_open: usize,
    /// An open wallet unused this long is closed and its lease given back
    /// (`WALLET_IDLE_CLOSE_MS`).
    pub idle_close: Duration,
    /// Master secret every session wallet seed is derived from (hex, at least 32 bytes;
    /// `WALLET_MASTER_SECRET`).
    pub master_secret: Secret,
    /// How often the wallet cleanup sweep runs (`WALLET_CLEANUP_INTERVAL`).
    pub cleanup_interval: Duration,
    /// Lifetime of a wallet lease; renewed every third of it.
    pub lease_ttl: Duration,
    /// How long an open waits for another process to give a wallet up.
    pub lease_wait: Duration,
}

impl WalletsConfig {
    /// The master secret as bytes (validated as hex at load time).
    pub fn master_secret_bytes(&self) -> Vec<u8> {
        self.master_secret
            .expose()
            .as_bytes()
            .chunks(2)
            .filter_map(|pair| std::str::from_utf8(pair).ok())
            .filter_map(|hex| u8::from_str_radix(hex, 16).ok())
            .collect()
    }
}

/// The HTTP side: listeners, sessions, rate limits and the api's bearer tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// Public listener address (`API_HOST`).
    pub host: String,
    /// Public listener port (`API_PORT`).
    pub port: u16,
    /// Prefix of every API route (`API_BASE_PATH`).
    pub base_path: String,
    /// Admin listener address; keep it private (`ADMIN_HOST`).
    pub admin_host: String,
    /// Admin listener port (`ADMIN_PORT`).
    pub admin_port: u16,
    /// Lifetime of a BAT session, at most one hour (`SESSION_EXPIRY`).
    pub session_expiry: Duration,
    /// How long a verified mint `/v1/info` (protected endpoints) is trusted before re-reading
    /// it (`BAT_VERIFICATION_CACHE_TTL`).
    pub bat_verification_cache_ttl: Duration,
    /// Rate limits.
    pub rate_limits: RateLimits,
    /// Bearer token of role `admin` (`ADMIN_TOKEN`).
    pub admin_token: Secret,
    /// Bearer token of role `oidc-api` (`OIDC_API_TOKEN`).
    pub oidc_api_token: Secret,
}

/// What the market accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Fiat currency of the market, ISO 4217 (`FIAT_CURRENCY`).
    pub fiat_currency: String,
    /// Largest fiat amount of one offer, in minor units (`MAX_FIAT_AMOUNT` is whole units).
    pub max_fiat_amount_minor: u64,
    /// Largest receipt image, bytes (`RECEIPT_MAX_BYTES`).
    pub receipt_max_bytes: usize,
}

/// Job processing: concurrency, polling and the periodic jobs' periods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Jobs each worker process runs at once per queue (`WORKER_CONCURRENCY`).
    pub concurrency: usize,
    /// How often an unpaid quote is asked about again.
    pub quote_poll_interval: Duration,
    /// How often the queue is polled for jobs that became due (delayed jobs and retries are
    /// not announced by PostgreSQL's insert notification).
    pub queue_poll_interval: Duration,
    /// How often the overdue-offer backstop runs.
    pub expiry_sweep: Duration,
    /// How often the reconciliation runs; also the least time between two checks of a wallet
    /// (`RECONCILE_INTERVAL`).
    pub reconcile_interval: Duration,
    /// Most wallets one reconciliation run checks (`RECONCILE_BATCH`).
    pub reconcile_batch: i64,
}

/// Reads variables through a lookup function so tests need not touch the process environment.
struct Env<F: Fn(&str) -> Option<String>>(F);

impl<F: Fn(&str) -> Option<String>> Env<F> {
    fn raw(&self, var: &'static str) -> Option<String> {
        (self.0)(var).filter(|v| !v.trim().is_empty())
    }

    fn required(&self, var: &'static str) -> Result<String, ConfigError> {
        self.raw(var).ok_or(ConfigError::Missing(var))
    }

    fn string(&self, var: &'static str, default: &str) -> String {
        self.raw(var).unwrap_or_else(|| default.to_owned())
    }

    fn parse<T>(&self, var: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match self.raw(var) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|e: T::Err| ConfigError::Invalid {
                var,
                reason: e.to_string(),
            }),
        }
    }

    fn positive<T>(&self, var: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + Default,
        T::Err: fmt::Display,
    {
        let v = self.parse(var, default)?;
        if v <= T::default() {
            return Err(invalid(var, "must be greater than zero"));
        }
        Ok(v)
    }

    fn secs(&self, var: &'static str, default: u64) -> Result<Duration, ConfigError> {
        Ok(Duration::from_secs(self.positive(var, default)?))
    }

    fn millis(&self, var: &'static str, default: u64) -> Result<Duration, ConfigError> {
        Ok(Duration::from_millis(self.positive(var, default)?))
    }

    fn bool(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.raw(var).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if ["1", "true", "yes", "on"].contains(&v.as_str()) => Ok(true),
            Some(v) if ["0", "false", "no", "off"].contains(&v.as_str()) => Ok(false),
            Some(_) => Err(invalid(var, "expected true or false")),
        }
    }

    fn fee(
        &self,
        pct_var: &'static str,
        pct_default: u32,
        flat_var: &'static str,
        flat_default: u64,
    ) -> Result<FeeRule, ConfigError> {
        let BasisPoints(bps) = self.parse(pct_var, BasisPoints(pct_default))?;
        Ok(FeeRule {
            bps,
            flat_sats: self.parse(flat_var, flat_default)?,
        })
    }

    fn token(&self, var: &'static str) -> Result<Secret, ConfigError> {
        let v = self.required(var)?;
        if v.len() < 16 {
            return Err(invalid(var, "must be at least 16 characters"));
        }
        Ok(Secret(v))
    }
}

fn invalid(var: &'static str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        var,
        reason: reason.to_owned(),
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads variables through `lookup` (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(lookup);
        Ok(Self {
            database: database_config(&env)?,
            mint: mint_config(&env)?,
            wallets: wallets_config(&env)?,
            api: api_config(&env)?,
            limits: limits(&env)?,
            timers: timers(&env)?,
            fees: FeeRules {
                platform_fee: env.fee("PLATFORM_FEE_PERCENT", 100, "PLATFORM_FEE_FLAT", 100)?,
                taker_reward: env.fee("TAKER_REWARD_PERCENT", 200, "TAKER_REWARD_FLAT", 100)?,
                maker_bond: env.fee("MAKER_BOND_PERCENT", 1000, "MAKER_BOND_FLAT", 500)?,
                taker_bond: env.fee("TAKER_BOND_PERCENT", 1000, "TAKER_BOND_FLAT", 500)?,
            },
            prices: price_config(&env)?,
            worker: worker_config(&env)?,
        })
    }
}

fn database_config<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<DatabaseConfig, ConfigError> {
    Ok(DatabaseConfig {
        url: Secret(env.required("DATABASE_URL")?),
        pool_size: env.positive("DATABASE_POOL_SIZE", 20)?,
    })
}

fn mint_config<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<MintConfig, ConfigError> {
    let url = env.required("MINT_URL")?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(invalid("MINT_URL", "must start with http:// or https://"));
    }
    let unit = env.string("MINT_UNIT", "sat");
    if unit != "sat" {
        return Err(invalid("MINT_UNIT", "only sat is supported"));
    }
    let service_oidc = match env.raw("SERVICE_OIDC_TOKEN_URL") {
        None => None,
        Some(token_url) => Some(ServiceOidc {
            token_url,
            client_id: env.required("SERVICE_OIDC_CLIENT_ID")?,
            client_secret: Secret(env.required("SERVICE_OIDC_CLIENT_SECRET")?),
        }),
    };
    Ok(MintConfig {
        url: url.trim_end_matches('/').to_owned(),
        unit,
        service_oidc,
    })
}

fn wallets_config<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<WalletsConfig, ConfigError> {
    let volumes: Vec<PathBuf> = env
        .string("WALLETS_DIR", "./data/wallets")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .collect();
    if volumes.is_empty() {
        return Err(invalid("WALLETS_DIR", "needs at least one directory"));
    }
    let master = env.required("WALLET_MASTER_SECRET")?;
    if master.len() < 64 || !master.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid(
            "WALLET_MASTER_SECRET",
            "must be at least 32 bytes of hex (64 hex characters)",
        ));
    }
    Ok(WalletsConfig {
        volumes,
        shards: env.positive("WALLET_SHARDS", 256)?,
        max_open: env.positive("WALLET_MAX_OPEN", 512)?,
        idle_close: env.millis("WALLET_IDLE_CLOSE_MS", 2_000)?,
        master_secret: Secret(master.to_ascii_lowercase()),
        cleanup_interval: env.millis("WALLET_CLEANUP_INTERVAL", 3_600_000)?,
        // Not variables: they only work together (the wait outlasts a lease, so a crashed
        // holder's lease runs out while an open waits for it), and tests set them directly.
        lease_ttl: Duration::from_secs(30),
        lease_wait: Duration::from_secs(45),
    })
}

fn api_config<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<ApiConfig, ConfigError> {
    let base_path = env.string("API_BASE_PATH", "/api/v1");
    if !base_path.starts_with('/') || base_path.ends_with('/') {
        return Err(invalid(
            "API_BASE_PATH",
            "must start with / and not end with /",
        ));
    }
    let session_expiry = env.secs("SESSION_EXPIRY", 3600)?;
    if session_expiry > Duration::from_secs(3600) {
        return Err(invalid("SESSION_EXPIRY", "may be at most 3600 seconds"));
    }
    Ok(ApiConfig {
        host: env.string("API_HOST", "0.0.0.0"),
        port: env.parse("API_PORT", 3000)?,
        base_path,
        admin_host: env.string("ADMIN_HOST", "127.0.0.1"),
        admin_port: env.parse("ADMIN_PORT", 3001)?,
        session_expiry,
        bat_verification_cache_ttl: env.secs("BAT_VERIFICATION_CACHE_TTL", 300)?,
        rate_limits: RateLimits {
            anonymous: env.positive("RATE_LIMIT_ANONYMOUS", 100)?,
            authenticated: env.positive("RATE_LIMIT_AUTHENTICATED", 1000)?,
            admin: env.positive("RATE_LIMIT_ADMIN", 5000)?,
            window: env.millis("RATE_LIMIT_WINDOW", 900_000)?,
            trust_forwarded_for: env.bool("TRUST_PROXY", false)?,
        },
        admin_token: env.token("ADMIN_TOKEN")?,
        oidc_api_token: env.token("OIDC_API_TOKEN")?,
    })
}

fn limits<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Limits, ConfigError> {
    let fiat_currency = env.string("FIAT_CURRENCY", "EUR").to_ascii_uppercase();
    if fiat_currency.len() != 3 || !fiat_currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(invalid(
            "FIAT_CURRENCY",
            "must be a three-letter ISO 4217 code",
        ));
    }
    let max_fiat: u64 = env.positive("MAX_FIAT_AMOUNT", 1000)?;
    Ok(Limits {
        fiat_currency,
        max_fiat_amount_minor: max_fiat
            .checked_mul(100)
            .ok_or_else(|| invalid("MAX_FIAT_AMOUNT", "too large"))?,
        receipt_max_bytes: env.positive("RECEIPT_MAX_BYTES", 5 * 1024 * 1024)?,
    })
}

fn timers<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Timers, ConfigError> {
    let timers = Timers {
        created: env.secs("TIMER_CREATED_SECS", 600)?,
        invoice_paid_default: env.secs("TIMER_INVOICE_PAID_SECS", 86_400)?,
        invoice_paid_max: env.secs("TIMER_INVOICE_PAID_MAX_SECS", 7 * 86_400)?,
        invoice_created: env.secs("TIMER_INVOICE_CREATED_SECS", 600)?,
        taker_bond_paid: env.secs("TIMER_TAKER_BOND_PAID_SECS", 3600)?,
        receipt_submitted: env.secs("TIMER_RECEIPT_SUBMITTED_SECS", 3600)?,
        marked_with_issue: env.secs("TIMER_MARKED_WITH_ISSUE_SECS", 3600)?,
        disputed: env.secs("TIMER_DISPUTED_SECS", 3600)?,
    };
    if timers.invoice_paid_default > timers.invoice_paid_max {
        return Err(invalid(
            "TIMER_INVOICE_PAID_SECS",
            "must not exceed TIMER_INVOICE_PAID_MAX_SECS",
        ));
    }
    Ok(timers)
}

fn worker_config<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<WorkerConfig, ConfigError> {
    Ok(WorkerConfig {
        concurrency: env.positive("WORKER_CONCURRENCY", 4)?,
        // Not variables: the mint's websocket announces payments; polling is only the
        // fallback, and the queue poll only bounds how late a delayed job starts.
        quote_poll_interval: Duration::from_secs(5),
        queue_poll_interval: Duration::from_secs(2),
        // The backstop behind each offer's own delayed lapse job (README: every 30 s).
        expiry_sweep: Duration::from_secs(30),
        reconcile_interval: env.millis("RECONCILE_INTERVAL", 300_000)?,
        reconcile_batch: env.positive("RECONCILE_BATCH", 500)?,
    })
}

fn price_config<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<PriceConfig, ConfigError> {
    if let Some(sources) = env.raw("PRICE_SOURCES") {
        let endpoints = sources
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .collect::<Result<Vec<crate::price::PriceEndpoint>, _>>()
            .map_err(|e| invalid("PRICE_SOURCES", &e))?;
        return Ok(PriceConfig::Http {
            endpoints,
            cache_for: env.secs("PRICE_CACHE_SECS", 30)?,
            max_age: env.secs("PRICE_MAX_AGE_SECS", 300)?,
        });
    }
    match env.raw("PRICE_FIXED") {
        Some(v) => crate::price::parse_major_to_minor(&v)
            .map(PriceConfig::Fixed)
            .ok_or_else(|| invalid("PRICE_FIXED", "expected a positive decimal price per BTC")),
        None => Err(ConfigError::Missing(
            "PRICE_SOURCES (or PRICE_FIXED for development)",
        )),
    }
}

/// Unwraps a configuration result or prints the one-line error and exits with code 2.
pub fn exit_on_error<T>(result: Result<T, ConfigError>) -> T {
    match result {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(CONFIG_EXIT_CODE);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn base() -> HashMap<&'static str, String> {
        HashMap::from([
            ("DATABASE_URL", "postgres://localhost/x".to_owned()),
            ("MINT_URL", "http://127.0.0.1:3338/".to_owned()),
            ("WALLET_MASTER_SECRET", "ab".repeat(32)),
            ("ADMIN_TOKEN", "admin-token-0123456789".to_owned()),
            ("OIDC_API_TOKEN", "oidc-token-0123456789".to_owned()),
            ("PRICE_FIXED", "60000".to_owned()),
        ])
    }

    fn load(vars: &HashMap<&'static str, String>) -> Result<Config, ConfigError> {
        Config::from_lookup(|k| vars.get(k).cloned())
    }

    #[test]
    fn defaults_follow_the_design() {
        let c = load(&base()).expect("config");
        assert_eq!(c.mint.url, "http://127.0.0.1:3338");
        assert_eq!(c.api.port, 3000);
        assert_eq!(c.api.admin_port, 3001);
        assert_eq!(c.api.base_path, "/api/v1");
        assert_eq!(c.api.session_expiry, Duration::from_secs(3600));
        assert_eq!(c.api.rate_limits.anonymous, 100);
        assert_eq!(c.api.rate_limits.window, Duration::from_secs(900));
        assert_eq!(
            c.fees.platform_fee,
            FeeRule {
                bps: 100,
                flat_sats: 100
            }
        );
        assert_eq!(
            c.fees.maker_bond,
            FeeRule {
                bps: 1000,
                flat_sats: 500
            }
        );
        assert_eq!(c.timers.created, Duration::from_secs(600));
        assert_eq!(c.limits.max_fiat_amount_minor, 100_000);
        assert_eq!(c.wallets.volumes, vec![PathBuf::from("./data/wallets")]);
        assert_eq!(c.wallets.lease_ttl, Duration::from_secs(30));
        assert_eq!(c.wallets.lease_wait, Duration::from_secs(45));
        assert_eq!(c.worker.quote_poll_interval, Duration::from_secs(5));
        assert_eq!(c.worker.queue_poll_interval, Duration::from_secs(2));
        assert_eq!(c.worker.expiry_sweep, Duration::from_secs(30));
    }

    #[test]
    fn missing_admin_token_names_the_variable() {
        let mut vars = base();
        vars.remove("ADMIN_TOKEN");
        let err = load(&vars).expect_err("must fail");
        assert_eq!(err, ConfigError::Missing("ADMIN_TOKEN"));
        assert_eq!(
            err.to_string(),
            "configuration error: ADMIN_TOKEN is required but not set"
        );
    }

    #[test]
    fn unparsable_number_names_the_variable() {
        let mut vars = base();
        vars.insert("API_PORT", "30x0".to_owned());
        let err = load(&vars).expect_err("must fail");
        assert!(
            matches!(
                err,
                ConfigError::Invalid {
                    var: "API_PORT",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn several_volumes_and_percentages() {
        let mut vars = base();
        vars.insert("WALLETS_DIR", "/a, /b".to_owned());
        vars.insert("PLATFORM_FEE_PERCENT", "0.5".to_owned());
        let c = load(&vars).expect("config");
        assert_eq!(
            c.wallets.volumes,
            vec![PathBuf::from("/a"), PathBuf::from("/b")]
        );
        assert_eq!(c.fees.platform_fee.bps, 50);
    }

    #[test]
    fn session_expiry_is_capped_at_one_hour() {
        let mut vars = base();
        vars.insert("SESSION_EXPIRY", "7200".to_owned());
        assert!(matches!(
            load(&vars),
            Err(ConfigError::Invalid {
                var: "SESSION_EXPIRY",
                ..
            })
        ));
    }

    #[test]
    fn service_account_needs_all_three_settings() {
        assert_eq!(load(&base()).expect("config").mint.service_oidc, None);
        let mut vars = base();
        vars.insert("SERVICE_OIDC_TOKEN_URL", "http://idp/token".to_owned());
        assert_eq!(
            load(&vars).expect_err("incomplete"),
            ConfigError::Missing("SERVICE_OIDC_CLIENT_ID")
        );
        vars.insert("SERVICE_OIDC_CLIENT_ID", "openpleb".to_owned());
        vars.insert("SERVICE_OIDC_CLIENT_SECRET", "s3cret".to_owned());
        let c = load(&vars).expect("config");
        assert_eq!(
            c.mint.service_oidc.map(|s| s.client_id),
            Some("openpleb".to_owned())
        );
    }

    #[test]
    fn master_secret_decodes_from_hex() {
        let c = load(&base()).expect("config");
        assert_eq!(c.wallets.master_secret_bytes(), vec![0xab; 32]);
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let c = load(&base()).expect("config");
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("admin-token-0123456789"));
        assert!(!dbg.contains(&"ab".repeat(32)));
    }
}
