//! The environment, group by group, to one [`Config`]: each group's variables, defaults and
//! cross-checks in one function.

use std::path::PathBuf;
use std::time::Duration;

use super::env::{invalid, Env};
use super::*;
use crate::keyring::data::DataKeys;

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
            reputation: reputation_config(&env)?,
            ops: ops_config(&env)?,
            retention: retention_config(&env)?,
            treasury: treasury_config(&env)?,
            notify: notify_config(&env)?,
            keys: keys_config(&env)?,
            data: DataKeys::parse(&env.required("DATA_SECRETS")?)
                .map_err(|reason| invalid("DATA_SECRETS", &reason))?,
        })
    }

    /// The api's configuration from the process environment: as [`Config::from_env`], refusing
    /// what only workers may hold.
    pub fn for_api_from_env() -> Result<Self, ConfigError> {
        Self::for_api(|k| std::env::var(k).ok())
    }

    /// The api's configuration: the api holds no wallet secret and no wallet volume, so a
    /// deployment cannot leak them to it by habit (one env file for every process): given
    /// one, it refuses to start and names the variable. It needs the workers' public keys.
    pub fn for_api(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        for var in WORKER_ONLY {
            if lookup(var).is_some_and(|v| !v.trim().is_empty()) {
                return Err(invalid(
                    var,
                    "the api holds no wallet secret or wallet volume: give it to the workers only",
                ));
            }
        }
        let config = Self::from_lookup(lookup)?;
        config.platform_keys()?;
        Ok(config)
    }
}

/// What only workers may be given.
pub const WORKER_ONLY: [&str; 3] = ["WALLET_MASTER_SECRET", "TREASURY_SECRET", "WALLETS_DIR"];

impl WalletsConfig {
    /// A worker's wallet settings from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// A worker's wallet settings through `lookup` (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        wallets_config(&Env(lookup))
    }
}

/// `QUOTE_LOCK_XPUB` and `TOKEN_SEAL_PUBKEY`, each checked when given.
fn keys_config<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<KeysConfig, ConfigError> {
    use std::str::FromStr;
    let xpub = env.raw("QUOTE_LOCK_XPUB").map(|v| v.trim().to_owned());
    if let Some(x) = &xpub {
        cdk_common::bitcoin::bip32::Xpub::from_str(x).map_err(|_| {
            invalid(
                "QUOTE_LOCK_XPUB",
                "expected a BIP-32 extended public key (xpub…)",
            )
        })?;
    }
    let seal = env
        .raw("TOKEN_SEAL_PUBKEY")
        .map(|v| v.trim().to_ascii_lowercase());
    if let Some(k) = &seal {
        cdk::nuts::PublicKey::from_hex(k).map_err(|_| {
            invalid(
                "TOKEN_SEAL_PUBKEY",
                "expected a compressed public key (66 hex characters)",
            )
        })?;
    }
    Ok(KeysConfig {
        quote_lock_xpub: xpub,
        token_seal_pubkey: seal,
    })
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
    let archive_dir = env.raw("WALLETS_ARCHIVE_DIR").map(PathBuf::from);
    if let Some(dir) = &archive_dir {
        // Archives are named by wallet id: inside a volume they would shadow live files.
        if volumes.iter().any(|v| dir.starts_with(v)) {
            return Err(invalid(
                "WALLETS_ARCHIVE_DIR",
                "must not be inside a WALLETS_DIR volume",
            ));
        }
    }
    let archive_days: u64 = env.positive("WALLET_ARCHIVE_DAYS", 90)?;
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
        archive_dir,
        archive_keep: archive_days
            .checked_mul(86_400)
            .map(Duration::from_secs)
            .ok_or_else(|| invalid("WALLET_ARCHIVE_DAYS", "too large"))?,
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
    let oidc_api_token = env.token("OIDC_API_TOKEN")?;
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
            trusted_proxies: trusted_proxies(env)?,
            ipv6_prefix: ipv6_prefix(env)?,
        },
        admins: admins(env, &oidc_api_token)?,
        oidc_api_token,
        events_max_per_session: env.positive("EVENTS_MAX_PER_SESSION", 3)?,
        events_max_per_ip: env.positive("EVENTS_MAX_PER_IP", 20)?,
        book_cache: Duration::from_millis(env.parse("BOOK_CACHE_MS", 2_000u64)?),
        session_cache: session_cache(env)?,
        stats_cache: Duration::from_millis(env.parse("STATS_CACHE_MS", 10_000u64)?),
    })
}

/// `SESSION_CACHE_MS`: at most [`SESSION_CACHE_MAX_MS`], because it bounds how long a logout
/// or renewal through another api process may go unseen here when its notice is lost.
fn session_cache<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Duration, ConfigError> {
    let ms = env.parse("SESSION_CACHE_MS", 1_000u64)?;
    if ms > SESSION_CACHE_MAX_MS {
        return Err(invalid(
            "SESSION_CACHE_MS",
            &format!("may be at most {SESSION_CACHE_MAX_MS} ms"),
        ));
    }
    Ok(Duration::from_millis(ms))
}

/// `RATE_LIMIT_IPV6_PREFIX`: how many leading bits of an IPv6 address name one client (a
/// host is usually given a whole /64, so any shorter key lets it pick a fresh bucket per
/// request).
fn ipv6_prefix<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<u8, ConfigError> {
    let bits = env.parse("RATE_LIMIT_IPV6_PREFIX", 64u8)?;
    if !(1..=128).contains(&bits) {
        return Err(invalid(
            "RATE_LIMIT_IPV6_PREFIX",
            "must be a prefix length from 1 to 128",
        ));
    }
    Ok(bits)
}

/// `TRUSTED_PROXIES`: comma-separated CIDR blocks, by default the loopback addresses (a proxy
/// on the same host).
fn trusted_proxies<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Vec<Cidr>, ConfigError> {
    env.string("TRUSTED_PROXIES", "127.0.0.0/8,::1/128")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .map_err(|e: String| invalid("TRUSTED_PROXIES", &e))
        })
        .collect()
}

/// `ADMIN_TOKEN` (named `admin`) and the `name:token` pairs of `ADMIN_TOKENS`: names and tokens
/// unique, and no admin token equal to the OIDC provider's, which would give it the admin role.
fn admins<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    oidc: &Secret,
) -> Result<Vec<AdminToken>, ConfigError> {
    let mut admins = vec![AdminToken {
        name: "admin".to_owned(),
        token: env.token("ADMIN_TOKEN")?,
    }];
    for pair in env.string("ADMIN_TOKENS", "").split(',').map(str::trim) {
        if pair.is_empty() {
            continue;
        }
        let (name, token) = pair
            .split_once(':')
            .ok_or_else(|| invalid("ADMIN_TOKENS", "expected name:token pairs"))?;
        let name_ok = (1..=32).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !name_ok {
            return Err(invalid(
                "ADMIN_TOKENS",
                "names are 1-32 of a-z, 0-9, _ and -",
            ));
        }
        if token.len() < 16 {
            return Err(invalid(
                "ADMIN_TOKENS",
                "tokens must be at least 16 characters",
            ));
        }
        if admins.iter().any(|a| a.name == name) {
            return Err(invalid("ADMIN_TOKENS", "admin names must be unique"));
        }
        if admins.iter().any(|a| a.token.expose() == token) {
            return Err(invalid("ADMIN_TOKENS", "admin tokens must be unique"));
        }
        admins.push(AdminToken {
            name: name.to_owned(),
            token: Secret(token.to_owned()),
        });
    }
    if admins.iter().any(|a| a.token.expose() == oidc.expose()) {
        return Err(invalid(
            "ADMIN_TOKEN",
            "no admin token may equal OIDC_API_TOKEN (the OIDC provider would get the admin role)",
        ));
    }
    Ok(admins)
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
        claim_max_unpaid: env.positive("CLAIM_MAX_UNPAID", 3)?,
        claim_max_pending_per_offer: env.positive("CLAIM_MAX_PENDING_PER_OFFER", 10)?,
        quote_max_payable: env.positive("QUOTE_MAX_PAYABLE", 20)?,
        claim_cooldown: Duration::from_secs(env.parse("CLAIM_COOLDOWN_SECS", 600)?),
        offer_max_open: env.positive("OFFER_MAX_OPEN", 10)?,
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
        details_disputed: env.secs("TIMER_DETAILS_DISPUTED_SECS", 3600)?,
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
        // A look at a quote the mint's subscription covers only insures against a lost
        // notification: a minute at most is what a lost one costs.
        quote_poll_max_interval: Duration::from_secs(60),
        quote_subscription: true,
        queue_poll_interval: Duration::from_secs(2),
        // The backstop behind each offer's own delayed lapse job (docs/architecture.md, "Jobs": every 30 s).
        expiry_sweep: Duration::from_secs(30),
        reconcile_interval: env.millis("RECONCILE_INTERVAL", 300_000)?,
        reconcile_batch: env.positive("RECONCILE_BATCH", 500)?,
    })
}

fn ops_config<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<OpsConfig, ConfigError> {
    let log_format = match env
        .string("LOG_FORMAT", "text")
        .to_ascii_lowercase()
        .as_str()
    {
        "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        _ => return Err(invalid("LOG_FORMAT", "expected text or json")),
    };
    let worker_metrics_addr = env.raw("WORKER_METRICS_ADDR");
    if let Some(addr) = &worker_metrics_addr {
        addr.parse::<std::net::SocketAddr>().map_err(|_| {
            invalid(
                "WORKER_METRICS_ADDR",
                "expected host:port, e.g. 127.0.0.1:9101",
            )
        })?;
    }
    Ok(OpsConfig {
        log_format,
        metrics_cache: env.secs("METRICS_CACHE_SECS", 15)?,
        worker_metrics_addr,
    })
}

fn retention_config<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<RetentionConfig, ConfigError> {
    let days = |var, default: u64| -> Result<Duration, ConfigError> {
        let d: u64 = env.positive(var, default)?;
        d.checked_mul(86_400)
            .map(Duration::from_secs)
            .ok_or_else(|| invalid(var, "too large"))
    };
    Ok(RetentionConfig {
        interval: env.millis("RETENTION_INTERVAL", 3_600_000)?,
        done_jobs: days("RETENTION_JOBS_DAYS", 7)?,
        dead_jobs: days("RETENTION_DEAD_JOBS_DAYS", 30)?,
        offer_events: days("RETENTION_OFFER_EVENTS_DAYS", 30)?,
        cron_slots: days("RETENTION_CRON_SLOTS_DAYS", 2)?,
        trade_data: days("RETENTION_TRADE_DATA_DAYS", 30)?,
    })
}

fn price_config<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<PriceConfig, ConfigError> {
    if let Some(sources) = env.raw("PRICE_SOURCES") {
        let endpoints = sources
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .collect::<Result<Vec<super::PriceEndpoint>, _>>()
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

fn reputation_config<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<ReputationConfig, ConfigError> {
    let secret = env.required("REPUTATION_SECRET")?;
    if secret.len() < 64 || secret.len() % 2 != 0 || !secret.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(invalid(
            "REPUTATION_SECRET",
            "must be at least 32 bytes of hex (64 hex characters)",
        ));
    }
    Ok(ReputationConfig {
        secret: Secret(secret.to_ascii_lowercase()),
        keyset: env.parse("REPUTATION_KEYSET", 0)?,
        earn_per_trade: env.parse("REPUTATION_EARN_PER_TRADE", 1)?,
        max_stake: env.parse("REPUTATION_MAX_STAKE", 5)?,
        min_earn_sats: env.parse("REPUTATION_MIN_EARN_SATS", 100_000)?,
    })
}

/// `TREASURY_PUBKEY` (x-only hex) and `TREASURY_SECRET` (hex), each optional here (a worker
/// needs the secret, `TreasuryConfig::check_sweeper`; the api the key, `Config::platform_keys`);
/// a secret given with the key must be the key's.
fn treasury_config<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<TreasuryConfig, ConfigError> {
    use std::str::FromStr;
    let pubkey = match env.raw("TREASURY_PUBKEY") {
        None => None,
        Some(k) => {
            let k = k.trim().to_ascii_lowercase();
            crate::domain::keys::XOnlyKey::from_str(&k)
                .map_err(|e| invalid("TREASURY_PUBKEY", &e.to_string()))?;
            Some(k)
        }
    };
    let secret = match env.raw("TREASURY_SECRET") {
        None => None,
        Some(s) => {
            let s = s.trim().to_ascii_lowercase();
            let key = cdk::nuts::SecretKey::from_hex(&s)
                .map_err(|_| invalid("TREASURY_SECRET", "expected a 32-byte secret key in hex"))?;
            let own = key.public_key().x_only_public_key().to_string();
            if pubkey.as_ref().is_some_and(|p| *p != own) {
                return Err(invalid(
                    "TREASURY_SECRET",
                    "is not the secret of TREASURY_PUBKEY",
                ));
            }
            Some(Secret(s))
        }
    };
    Ok(TreasuryConfig { pubkey, secret })
}

fn notify_config<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<NotifyConfig, ConfigError> {
    let vapid_private_key = env.raw("VAPID_PRIVATE_KEY").map(Secret);
    if let Some(key) = &vapid_private_key {
        crate::notify::push::VapidKey::from_base64url(key.expose()).map_err(|_| {
            invalid(
                "VAPID_PRIVATE_KEY",
                "expected a P-256 private key, 32 bytes base64url",
            )
        })?;
    }
    let vapid_subject = env.string("VAPID_SUBJECT", "mailto:operator@localhost");
    if !(vapid_subject.starts_with("mailto:") || vapid_subject.starts_with("https://")) {
        return Err(invalid("VAPID_SUBJECT", "expected a mailto: or https: URL"));
    }
    let remind_before =
        crate::domain::notify::parse_remind_before(&env.string("NOTIFY_REMIND_BEFORE", "15m,50%"))
            .map_err(|e| invalid("NOTIFY_REMIND_BEFORE", &e.to_string()))?;
    Ok(NotifyConfig {
        vapid_private_key,
        vapid_subject,
        remind_before,
        max_attempts: env.positive("NOTIFY_MAX_ATTEMPTS", 8)?,
        max_targets: env.positive("NOTIFY_MAX_TARGETS", 3)?,
        allow_private: env.bool("NOTIFY_ALLOW_PRIVATE", false)?,
        connect_timeout: env.millis("NOTIFY_CONNECT_TIMEOUT_MS", 3_000)?,
        timeout: env.millis("NOTIFY_TIMEOUT_MS", 10_000)?,
        forget_after: env.secs("NOTIFY_FORGET_AFTER_SECS", 600)?,
    })
}
