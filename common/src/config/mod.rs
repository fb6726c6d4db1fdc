//! Environment variables to one validated [`Config`].
//!
//! Every setting the api and the worker read comes from here. A missing or malformed value is a
//! [`ConfigError`] that names the variable; the binaries print it as one line and exit with
//! code 2 (see [`exit_on_error`]). Secrets are kept out of `Debug` output.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::domain::money::FeeRules;
use crate::domain::offer::Timers;

pub use cidr::Cidr;
pub use load::WORKER_ONLY;
pub use price_endpoint::PriceEndpoint;

mod cidr;
mod env;
mod load;
mod price_endpoint;
#[cfg(test)]
mod tests;

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
    /// A secret from its value (tests and callers that build a configuration by hand).
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret's bytes, for a secret validated as hex when it was loaded.
    pub fn hex_bytes(&self) -> Vec<u8> {
        self.0
            .as_bytes()
            .chunks(2)
            .filter_map(|pair| std::str::from_utf8(pair).ok())
            .filter_map(|hex| u8::from_str_radix(hex, 16).ok())
            .collect()
    }

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
    /// Take the client's address from `X-Forwarded-For` (only behind a proxy you run): the
    /// right-most address not in `trusted_proxies`, when the peer itself is one of them
    /// (`TRUST_PROXY`).
    pub trust_forwarded_for: bool,
    /// Proxies whose `X-Forwarded-For` entries are believed (`TRUSTED_PROXIES`).
    pub trusted_proxies: Vec<Cidr>,
    /// IPv6 clients are counted per network of this prefix length, IPv4 clients per address
    /// (`RATE_LIMIT_IPV6_PREFIX`, 1 to 128).
    pub ipv6_prefix: u8,
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
        endpoints: Vec<PriceEndpoint>,
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
    /// Reputation tokens.
    pub reputation: ReputationConfig,
    /// Logs and metrics.
    pub ops: OpsConfig,
    /// How long finished records are kept.
    pub retention: RetentionConfig,
    /// The key the platform's fees lock to.
    pub treasury: TreasuryConfig,
    /// Telling parties out of band: Web Push and webhooks.
    pub notify: NotifyConfig,
    /// The workers' public keys, as the api is given them.
    pub keys: KeysConfig,
    /// The secrets trade data is sealed with at rest (`DATA_SECRETS`; api and workers).
    pub data: crate::keyring::data::DataKeys,
}

impl Config {
    /// The workers' public keys the api locks quotes, seals tokens and locks fees to: all three
    /// are required where they are needed (the api).
    pub fn platform_keys(&self) -> Result<crate::keyring::PlatformKeys, ConfigError> {
        let xpub = self
            .keys
            .quote_lock_xpub
            .as_deref()
            .ok_or(ConfigError::Missing("QUOTE_LOCK_XPUB"))?;
        let seal = self
            .keys
            .token_seal_pubkey
            .as_deref()
            .ok_or(ConfigError::Missing("TOKEN_SEAL_PUBKEY"))?;
        let treasury = self
            .treasury
            .pubkey
            .as_deref()
            .ok_or(ConfigError::Missing("TREASURY_PUBKEY"))?;
        crate::keyring::PlatformKeys::parse(xpub, seal, treasury).map_err(|(var, e)| {
            ConfigError::Invalid {
                var,
                reason: e.to_string(),
            }
        })
    }

    /// A worker's check that the public keys it was given (if any) are its own: an api given
    /// another deployment's keys would lock quotes and seal tokens no worker can use.
    pub fn check_worker_keys(&self, own: &crate::keyring::PlatformKeys) -> Result<(), ConfigError> {
        let mismatch = |var: &'static str| ConfigError::Invalid {
            var,
            reason:
                "is not the key WALLET_MASTER_SECRET derives; see `openpleb-worker public-keys`"
                    .to_owned(),
        };
        if self
            .keys
            .quote_lock_xpub
            .as_deref()
            .is_some_and(|x| x != own.quote_locks.to_string())
        {
            return Err(mismatch("QUOTE_LOCK_XPUB"));
        }
        if self
            .keys
            .token_seal_pubkey
            .as_deref()
            .is_some_and(|k| k != own.token_seal.to_hex())
        {
            return Err(mismatch("TOKEN_SEAL_PUBKEY"));
        }
        Ok(())
    }
}

/// The workers' public keys (`crate::keyring`), given to the api; a worker derives its own and
/// checks these against them when they are set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeysConfig {
    /// `QUOTE_LOCK_XPUB`: the extended public key quote locks derive from.
    pub quote_lock_xpub: Option<String>,
    /// `TOKEN_SEAL_PUBKEY`: what funding tokens are sealed to (compressed, hex).
    pub token_seal_pubkey: Option<String>,
}

/// Notifications (Web Push, webhooks): the VAPID key, reminders, delivery bounds and which
/// addresses a delivery may reach.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifyConfig {
    /// The VAPID private key (RFC 8292): the raw P-256 scalar, base64url (`VAPID_PRIVATE_KEY`).
    /// Without it Web Push is off (subscriptions are refused); webhooks work regardless.
    pub vapid_private_key: Option<Secret>,
    /// Who runs this server, for push services (`VAPID_SUBJECT`, a `mailto:` or `https:` URL).
    pub vapid_subject: String,
    /// Reminders before a deadline where silence decides against a party
    /// (`NOTIFY_REMIND_BEFORE`, e.g. `15m,50%`).
    pub remind_before: Vec<crate::domain::notify::RemindBefore>,
    /// Deliveries tried per notice and target before it is given up (`NOTIFY_MAX_ATTEMPTS`).
    pub max_attempts: u32,
    /// Push subscriptions and webhooks one party of one offer may hold
    /// (`NOTIFY_MAX_TARGETS`).
    pub max_targets: i64,
    /// Deliveries may reach loopback, private and link-local addresses, and plain http
    /// (`NOTIFY_ALLOW_PRIVATE`: development and tests only).
    pub allow_private: bool,
    /// Connecting to a push service or webhook (`NOTIFY_CONNECT_TIMEOUT_MS`).
    pub connect_timeout: Duration,
    /// One delivery in all (`NOTIFY_TIMEOUT_MS`).
    pub timeout: Duration,
    /// How long a final offer's (or an ended claim's) targets are kept once nothing is owed
    /// any more, so its last notices still go out (`NOTIFY_FORGET_AFTER_SECS`).
    pub forget_after: Duration,
}

/// The treasury key platform payouts are P2PK-locked to (`wallet::treasury`), whose secret is
/// never in PostgreSQL and also seeds the treasury wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreasuryConfig {
    /// x-only hex (`TREASURY_PUBKEY`): what the api, which never sweeps, locks fees to; `None`:
    /// `secret`'s public key.
    pub pubkey: Option<String>,
    /// The secret key, hex (`TREASURY_SECRET`); checked to belong to `pubkey`. Workers only:
    /// they redeem the fee tokens into the treasury wallet, whose seed derives from it, and pay
    /// withdrawals out of it. The api refuses it (`Config::for_api`); it needs
    /// `TREASURY_PUBKEY` ([`Config::platform_keys`]).
    pub secret: Option<Secret>,
}

impl TreasuryConfig {
    /// What a worker (the process that sweeps and pays withdrawals) needs: `TREASURY_SECRET`,
    /// or the fees would wait, locked, forever and the treasury wallet could not be opened.
    pub fn check_sweeper(&self) -> Result<(), ConfigError> {
        if self.secret.is_none() {
            return Err(ConfigError::Missing("TREASURY_SECRET"));
        }
        Ok(())
    }
}

/// Reputation tokens: the issuer's secret and rotation, and how many tokens a trade earns or
/// a party may stake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReputationConfig {
    /// Every reputation keyset derives from it (`REPUTATION_SECRET`, hex, at least 32 bytes).
    pub secret: Secret,
    /// The active keyset's rotation number; keysets `0..=keyset` all still verify
    /// (`REPUTATION_KEYSET`).
    pub keyset: u32,
    /// Blinded outputs a party may send per trade, signed when it earns
    /// (`REPUTATION_EARN_PER_TRADE`).
    pub earn_per_trade: usize,
    /// Most tokens one party may stake on one offer or claim (`REPUTATION_MAX_STAKE`).
    pub max_stake: usize,
    /// Smallest escrow, in sats, of a trade that earns tokens (`REPUTATION_MIN_EARN_SATS`):
    /// below it a completed trade only returns stakes, so farming tokens between two sessions
    /// of one user costs at least the platform fee of a trade of this size.
    pub min_earn_sats: u64,
}

impl ReputationConfig {
    /// The secret as bytes (validated as hex at load time).
    pub fn secret_bytes(&self) -> Vec<u8> {
        self.secret.hex_bytes()
    }
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

/// Session wallets: where their files live, how many stay open, their leases, and the master
/// secret their seeds derive from. A worker's only: the api's [`Config`] has no such field
/// (`Config::for_api` refuses the variables).
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
    /// Where the files of sessions whose trade went through a dispute or an admin action are
    /// copied before the cleanup deletes them; archiving is off when unset
    /// (`WALLETS_ARCHIVE_DIR`).
    pub archive_dir: Option<PathBuf>,
    /// How long an archived wallet file is kept before the retention job deletes it
    /// (`WALLET_ARCHIVE_DAYS`).
    pub archive_keep: Duration,
}

impl WalletsConfig {
    /// The master secret as bytes (validated as hex at load time).
    pub fn master_secret_bytes(&self) -> Vec<u8> {
        self.master_secret.hex_bytes()
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
    /// Admins and their bearer tokens: `ADMIN_TOKEN` is the admin named `admin`, and
    /// `ADMIN_TOKENS` (`name:token,...`) adds named admins; every admin write is recorded
    /// under the name.
    pub admins: Vec<AdminToken>,
    /// Bearer token of role `oidc-api` (`OIDC_API_TOKEN`).
    pub oidc_api_token: Secret,
    /// Most event streams one session may hold open (`EVENTS_MAX_PER_SESSION`).
    pub events_max_per_session: usize,
    /// Most event streams one client address may hold open (`EVENTS_MAX_PER_IP`).
    pub events_max_per_ip: usize,
    /// Longest an anonymous book page is served from the api's cache (`BOOK_CACHE_MS`; 0 turns
    /// the cache off). Offer changes clear it at once; this bounds what a missed change costs.
    pub book_cache: Duration,
    /// Longest a session look-up is reused for reads (`GET`, `HEAD`) by the same BAT
    /// (`SESSION_CACHE_MS`, at most [`SESSION_CACHE_MAX_MS`]; 0 turns it off). Writes always
    /// look the session up afresh.
    pub session_cache: Duration,
    /// Longest `/stats` is answered from the api's last count (`STATS_CACHE_MS`; 0 turns the
    /// cache off).
    pub stats_cache: Duration,
}

/// The most `SESSION_CACHE_MS` may be: a logout through one api process ends reads through
/// the others at once by notice, and within this long if the notice is lost.
pub const SESSION_CACHE_MAX_MS: u64 = 5_000;

/// One admin's name and bearer token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminToken {
    /// Name, recorded with every admin write (`[a-z0-9_-]{1,32}`).
    pub name: String,
    /// Bearer token, at least 16 characters.
    pub token: Secret,
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
    /// Most claims one session may hold with the bond unpaid (`CLAIM_MAX_UNPAID`): a claim
    /// hides nothing, but each is a mint quote we make and watch for free.
    pub claim_max_unpaid: i64,
    /// Most claims waiting for their bonds on one offer (`CLAIM_MAX_PENDING_PER_OFFER`).
    pub claim_max_pending_per_offer: i64,
    /// Most invoices of one session that can still be paid (`QUOTE_MAX_PAYABLE`): deposit and
    /// bond invoices stay payable at the mint after their offer or claim ended, and each is
    /// watched until it expires there.
    pub quote_max_payable: i64,
    /// How long a session whose claim lapsed unpaid may not claim that offer again
    /// (`CLAIM_COOLDOWN_SECS`; 0 turns the cooldown off).
    pub claim_cooldown: Duration,
    /// Most open offers (CREATED, INVOICE_PAID) one session may have as maker
    /// (`OFFER_MAX_OPEN`).
    pub offer_max_open: i64,
}

/// Job processing: concurrency, polling and the periodic jobs' periods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Jobs each worker process runs at once per queue (`WORKER_CONCURRENCY`).
    pub concurrency: usize,
    /// How often an unpaid quote is asked about again while the mint's subscription does not
    /// cover it; while it does, the first interval of a backoff that doubles each look.
    pub quote_poll_interval: Duration,
    /// The longest wait between two looks at a covered quote (the backoff's cap).
    pub quote_poll_max_interval: Duration,
    /// Whether the worker subscribes to quote payments at the mint (NUT-17); without it only
    /// polling finds them (`scripts/bench` measures both).
    pub quote_subscription: bool,
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

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (development).
    Text,
    /// One JSON object per line (production: log shippers parse it).
    Json,
}

/// Logs and metrics (`docs/operations.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpsConfig {
    /// `text` or `json` (`LOG_FORMAT`).
    pub log_format: LogFormat,
    /// How long the database-backed gauges are reused between scrapes (`METRICS_CACHE_SECS`).
    pub metrics_cache: Duration,
    /// Where a worker serves `/metrics`; off when unset (`WORKER_METRICS_ADDR`).
    pub worker_metrics_addr: Option<String>,
}

/// How long finished records are kept before the retention job deletes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionConfig {
    /// How often the retention job runs (`RETENTION_INTERVAL`, ms).
    pub interval: Duration,
    /// Completed jobs older than this go (`RETENTION_JOBS_DAYS`).
    pub done_jobs: Duration,
    /// Dead jobs (killed, or out of attempts) older than this go; kept longer so an operator
    /// sees them (`RETENTION_DEAD_JOBS_DAYS`).
    pub dead_jobs: Duration,
    /// Events of offers in a final state for longer than this go (`RETENTION_OFFER_EVENTS_DAYS`).
    pub offer_events: Duration,
    /// Cron slot claims older than this go (`RETENTION_CRON_SLOTS_DAYS`).
    pub cron_slots: Duration,
    /// An offer's trade data (payment details, receipt, evidence, dispute messages) goes this
    /// long after the offer became final (`RETENTION_TRADE_DATA_DAYS`).
    pub trade_data: Duration,
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
