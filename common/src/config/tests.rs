//! The configuration's loading rules.

use std::collections::HashMap;

use super::*;
use crate::domain::money::FeeRule;

fn base() -> HashMap<&'static str, String> {
    HashMap::from([
        ("DATABASE_URL", "postgres://localhost/x".to_owned()),
        ("MINT_URL", "http://127.0.0.1:3338/".to_owned()),
        ("WALLET_MASTER_SECRET", "ab".repeat(32)),
        ("REPUTATION_SECRET", "cd".repeat(32)),
        ("DATA_SECRETS", format!("1:{}", "da".repeat(32))),
        ("ADMIN_TOKEN", "admin-token-0123456789".to_owned()),
        ("OIDC_API_TOKEN", "oidc-token-0123456789".to_owned()),
        ("PRICE_FIXED", "60000".to_owned()),
    ])
}

fn load(vars: &HashMap<&'static str, String>) -> Result<Config, ConfigError> {
    Config::from_lookup(|k| vars.get(k).cloned())
}

/// Checks that loading `vars` fails naming `name` as the invalid variable (`why` says how).
fn assert_invalid(vars: &HashMap<&'static str, String>, name: &str, why: &str) {
    match load(vars).expect_err(why) {
        ConfigError::Invalid { var, .. } => assert_eq!(var, name),
        other => panic!("{other:?}"),
    }
}

fn wallets(vars: &HashMap<&'static str, String>) -> Result<WalletsConfig, ConfigError> {
    WalletsConfig::from_lookup(|k| vars.get(k).cloned())
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
    assert_eq!(c.limits.claim_max_unpaid, 3);
    assert_eq!(c.limits.claim_max_pending_per_offer, 10);
    assert_eq!(c.limits.quote_max_payable, 20);
    assert_eq!(c.timers.details_disputed, Duration::from_secs(3600));
    assert_eq!(c.reputation.min_earn_sats, 100_000);
    assert_eq!(c.limits.claim_cooldown, Duration::from_secs(600));
    assert_eq!(c.limits.offer_max_open, 10);
    assert!(!c.api.rate_limits.trust_forwarded_for);
    assert_eq!(
        (c.api.events_max_per_session, c.api.events_max_per_ip),
        (3, 20)
    );
    let proxies: Vec<String> = c
        .api
        .rate_limits
        .trusted_proxies
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(proxies, ["127.0.0.0/8", "::1/128"]);
    let w = wallets(&base()).expect("wallets");
    assert_eq!(w.volumes, vec![PathBuf::from("./data/wallets")]);
    assert_eq!(w.lease_ttl, Duration::from_secs(30));
    assert_eq!(w.lease_wait, Duration::from_secs(45));
    assert_eq!(c.worker.quote_poll_interval, Duration::from_secs(5));
    assert_eq!(c.worker.quote_poll_max_interval, Duration::from_secs(60));
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
fn named_admins_join_the_default_one_and_never_share_the_oidc_token() {
    let mut vars = base();
    vars.insert(
        "ADMIN_TOKENS",
        "alice:alice-token-0123456789, bob:bob-token-0123456789".to_owned(),
    );
    let c = load(&vars).expect("loads");
    let names: Vec<_> = c.api.admins.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["admin", "alice", "bob"]);

    for bad in [
        "alice",
        "Alice:alice-token-0123456789",
        "alice:short",
        "admin:x-token-0123456789",
    ] {
        let mut vars = base();
        vars.insert("ADMIN_TOKENS", bad.to_owned());
        let err = load(&vars).expect_err(bad);
        assert!(
            matches!(
                err,
                ConfigError::Invalid {
                    var: "ADMIN_TOKENS",
                    ..
                }
            ),
            "{bad}: {err}"
        );
    }

    let mut vars = base();
    vars.insert("ADMIN_TOKEN", vars["OIDC_API_TOKEN"].clone());
    let err = load(&vars).expect_err("admin token equal to the OIDC token");
    assert!(
        matches!(
            err,
            ConfigError::Invalid {
                var: "ADMIN_TOKEN",
                ..
            }
        ),
        "{err}"
    );
    let mut vars = base();
    vars.insert("ADMIN_TOKENS", format!("carol:{}", vars["OIDC_API_TOKEN"]));
    assert!(load(&vars).is_err(), "a named admin with the OIDC token");
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
        wallets(&vars).expect("wallets").volumes,
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
    let w = wallets(&base()).expect("wallets");
    assert_eq!(w.master_secret_bytes(), vec![0xab; 32]);
}

#[test]
fn secrets_do_not_show_in_debug() {
    let c = load(&base()).expect("config");
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("admin-token-0123456789"));
    let w = format!("{:?}", wallets(&base()).expect("wallets"));
    assert!(!w.contains(&"ab".repeat(32)));
}

#[test]
fn trusted_proxies_are_cidr_blocks() {
    let mut vars = base();
    vars.insert(
        "TRUSTED_PROXIES",
        " 10.0.0.0/8, fd00::/8 ,192.0.2.1".to_owned(),
    );
    let c = load(&vars).expect("loads");
    let proxies: Vec<String> = c
        .api
        .rate_limits
        .trusted_proxies
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(proxies, ["10.0.0.0/8", "fd00::/8", "192.0.2.1/32"]);
    vars.insert("TRUSTED_PROXIES", "10.0.0.0/40".to_owned());
    assert_invalid(&vars, "TRUSTED_PROXIES", "bad prefix");
}

#[test]
fn wallet_archives_are_off_unless_a_directory_is_named() {
    let c = wallets(&base()).expect("config");
    assert_eq!(c.archive_dir, None);
    assert_eq!(c.archive_keep, Duration::from_secs(90 * 86_400));
    let mut vars = base();
    vars.insert("WALLETS_DIR", "/srv/wallets".to_owned());
    vars.insert("WALLETS_ARCHIVE_DIR", "/srv/archive".to_owned());
    vars.insert("WALLET_ARCHIVE_DAYS", "7".to_owned());
    let c = wallets(&vars).expect("config");
    assert_eq!(c.archive_dir, Some(PathBuf::from("/srv/archive")));
    assert_eq!(c.archive_keep, Duration::from_secs(7 * 86_400));
    vars.insert("WALLETS_ARCHIVE_DIR", "/srv/wallets/archive".to_owned());
    assert!(matches!(
        wallets(&vars),
        Err(ConfigError::Invalid {
            var: "WALLETS_ARCHIVE_DIR",
            ..
        })
    ));
    vars.insert("WALLETS_ARCHIVE_DIR", "/srv/archive".to_owned());
    vars.insert("WALLET_ARCHIVE_DAYS", "0".to_owned());
    assert!(wallets(&vars).is_err());
}

#[test]
fn a_treasury_secret_must_be_its_keys() {
    let c = load(&base()).expect("config");
    assert_eq!(c.treasury.pubkey, None);
    // Neither key: a worker exits naming TREASURY_SECRET (the api's `platform_keys` names
    // TREASURY_PUBKEY: the_api_refuses_what_only_workers_hold_and_needs_the_public_keys).
    assert_eq!(
        c.treasury.check_sweeper(),
        Err(ConfigError::Missing("TREASURY_SECRET"))
    );
    assert_eq!(
        c.treasury.check_sweeper().expect_err("missing").to_string(),
        "configuration error: TREASURY_SECRET is required but not set"
    );
    let sk = cdk::nuts::SecretKey::generate();
    let pk = sk.public_key().x_only_public_key().to_string();
    let mut vars = base();
    vars.insert("TREASURY_PUBKEY", pk.clone());
    let c = load(&vars).expect("config");
    assert_eq!(c.treasury.pubkey.as_deref(), Some(pk.as_str()));
    assert!(
        c.treasury.check_sweeper().is_err(),
        "a worker needs the secret"
    );
    vars.insert("TREASURY_SECRET", sk.to_secret_hex());
    assert!(load(&vars)
        .expect("config")
        .treasury
        .check_sweeper()
        .is_ok());
    vars.insert(
        "TREASURY_SECRET",
        cdk::nuts::SecretKey::generate().to_secret_hex(),
    );
    assert!(matches!(
        load(&vars),
        Err(ConfigError::Invalid {
            var: "TREASURY_SECRET",
            ..
        })
    ));
    vars.insert("TREASURY_PUBKEY", "zz".repeat(32));
    assert!(load(&vars).is_err());
    let dbg = format!(
        "{:?}",
        load(&{
            let mut v = base();
            v.insert("TREASURY_SECRET", sk.to_secret_hex());
            v
        })
        .expect("config")
        .treasury
    );
    assert!(!dbg.contains(&sk.to_secret_hex()), "{dbg}");
}

/// The variable a bad value of `var` is refused under, with the error's text.
fn refused(var: &'static str, value: &str) -> (&'static str, String) {
    let mut vars = base();
    vars.insert(var, value.to_owned());
    match load(&vars) {
        Err(e @ ConfigError::Invalid { var: named, .. }) => (named, e.to_string()),
        other => panic!("{var}={value}: expected Invalid, got {other:?}"),
    }
}

#[test]
fn logs_metrics_and_retention_refuse_bad_values_by_name() {
    let bad = [
        ("LOG_FORMAT", "yaml"),
        ("LOG_FORMAT", "jsonl"),
        ("WORKER_METRICS_ADDR", "localhost"),
        ("WORKER_METRICS_ADDR", "127.0.0.1"),
        ("WORKER_METRICS_ADDR", "127.0.0.1:metrics"),
        ("WORKER_METRICS_ADDR", "127.0.0.1:70000"),
        ("RETENTION_INTERVAL", "0"),
        ("RETENTION_INTERVAL", "hourly"),
        ("RETENTION_JOBS_DAYS", "0"),
        ("RETENTION_JOBS_DAYS", "-1"),
        ("RETENTION_DEAD_JOBS_DAYS", "thirty"),
        ("RETENTION_OFFER_EVENTS_DAYS", "0"),
        ("RETENTION_CRON_SLOTS_DAYS", "1.5"),
        // Days that overflow a duration in seconds.
        ("RETENTION_OFFER_EVENTS_DAYS", "18446744073709551615"),
    ];
    for (var, value) in bad {
        let (named, text) = refused(var, value);
        assert_eq!(named, var, "{var}={value}: {text}");
        assert!(text.contains(var), "{text}");
    }

    // Good values load as written; LOG_FORMAT ignores case.
    let mut vars = base();
    vars.insert("LOG_FORMAT", "JSON".to_owned());
    vars.insert("WORKER_METRICS_ADDR", "127.0.0.1:9101".to_owned());
    vars.insert("RETENTION_INTERVAL", "60000".to_owned());
    vars.insert("RETENTION_JOBS_DAYS", "3".to_owned());
    vars.insert("RETENTION_DEAD_JOBS_DAYS", "60".to_owned());
    vars.insert("RETENTION_OFFER_EVENTS_DAYS", "10".to_owned());
    vars.insert("RETENTION_CRON_SLOTS_DAYS", "1".to_owned());
    vars.insert("RETENTION_TRADE_DATA_DAYS", "14".to_owned());
    let c = load(&vars).expect("config");
    assert_eq!(c.ops.log_format, LogFormat::Json);
    assert_eq!(c.ops.worker_metrics_addr.as_deref(), Some("127.0.0.1:9101"));
    let day = 86_400;
    assert_eq!(
        c.retention,
        RetentionConfig {
            interval: Duration::from_secs(60),
            done_jobs: Duration::from_secs(3 * day),
            dead_jobs: Duration::from_secs(60 * day),
            offer_events: Duration::from_secs(10 * day),
            cron_slots: Duration::from_secs(day),
            trade_data: Duration::from_secs(14 * day),
        }
    );
    // Unset (or empty): text logs, no worker listener, the documented retention.
    let mut vars = base();
    vars.insert("WORKER_METRICS_ADDR", String::new());
    let c = load(&vars).expect("config");
    assert_eq!(c.ops.log_format, LogFormat::Text);
    assert_eq!(c.ops.worker_metrics_addr, None);
    assert_eq!(c.retention.interval, Duration::from_secs(3600));
    assert_eq!(c.retention.done_jobs, Duration::from_secs(7 * day));
    assert_eq!(c.retention.dead_jobs, Duration::from_secs(30 * day));
    assert_eq!(c.retention.offer_events, Duration::from_secs(30 * day));
    assert_eq!(c.retention.cron_slots, Duration::from_secs(2 * day));
    assert_eq!(c.retention.trade_data, Duration::from_secs(30 * day));
}

#[test]
fn the_reputation_secret_is_required_and_long_enough() {
    let mut vars = base();
    vars.remove("REPUTATION_SECRET");
    let err = load(&vars).expect_err("missing");
    assert_eq!(err, ConfigError::Missing("REPUTATION_SECRET"));
    assert!(err.to_string().contains("REPUTATION_SECRET"), "{err}");
    vars.insert("REPUTATION_SECRET", "  ".to_owned());
    assert_eq!(
        load(&vars).expect_err("blank"),
        ConfigError::Missing("REPUTATION_SECRET")
    );

    // 31 bytes, an odd number of digits, a character that is not hex.
    let short = "cd".repeat(31);
    let odd = format!("{}c", "cd".repeat(32));
    let not_hex = format!("{}zz", "cd".repeat(32));
    for bad in [&short, &odd, &not_hex] {
        let (named, text) = refused("REPUTATION_SECRET", bad);
        assert_eq!(named, "REPUTATION_SECRET", "{text}");
        assert!(!text.contains(bad.as_str()), "the secret leaked: {text}");
    }
    // 32 bytes, or more, in either case.
    for good in ["CD".repeat(32), "ab".repeat(48)] {
        let mut vars = base();
        vars.insert("REPUTATION_SECRET", good.clone());
        assert!(load(&vars).is_ok(), "{} hex digits", good.len());
    }
}

#[test]
fn the_session_cache_is_capped_at_a_few_seconds() {
    let mut vars = base();
    vars.insert("SESSION_CACHE_MS", "5000".to_owned());
    assert_eq!(
        load(&vars).expect("at the cap").api.session_cache,
        Duration::from_secs(5)
    );
    vars.insert("SESSION_CACHE_MS", "5001".to_owned());
    assert_invalid(&vars, "SESSION_CACHE_MS", "past the cap");
}

#[test]
fn the_ipv6_prefix_is_a_prefix_length() {
    let mut vars = base();
    assert_eq!(
        load(&vars).expect("default").api.rate_limits.ipv6_prefix,
        64
    );
    vars.insert("RATE_LIMIT_IPV6_PREFIX", "56".to_owned());
    assert_eq!(load(&vars).expect("56").api.rate_limits.ipv6_prefix, 56);
    for bad in ["0", "129", "-1", "64x"] {
        vars.insert("RATE_LIMIT_IPV6_PREFIX", bad.to_owned());
        assert_invalid(&vars, "RATE_LIMIT_IPV6_PREFIX", bad);
    }
}

#[test]
fn stats_are_cached_ten_seconds_unless_told() {
    let mut vars = base();
    assert_eq!(
        load(&vars).expect("default").api.stats_cache,
        Duration::from_secs(10)
    );
    vars.insert("STATS_CACHE_MS", "0".to_owned());
    assert_eq!(load(&vars).expect("off").api.stats_cache, Duration::ZERO);
}

#[test]
fn the_api_refuses_what_only_workers_hold_and_needs_the_public_keys() {
    let keys = {
        let sk = cdk::nuts::SecretKey::from_slice(&[7; 32]).expect("key");
        let treasury = <crate::domain::keys::XOnlyKey as std::str::FromStr>::from_str(
            &sk.public_key().x_only_public_key().to_string(),
        )
        .expect("x-only");
        crate::keyring::WorkerKeys::derive(&[0xab; 32], treasury)
            .expect("keys")
            .public
    };
    let mut vars = base();
    vars.remove("WALLET_MASTER_SECRET");
    let api = |vars: &HashMap<&'static str, String>| Config::for_api(|k| vars.get(k).cloned());
    assert_eq!(
        api(&vars).map(|_| ()),
        Err(ConfigError::Missing("QUOTE_LOCK_XPUB"))
    );
    vars.insert("QUOTE_LOCK_XPUB", keys.quote_locks.to_string());
    vars.insert("TOKEN_SEAL_PUBKEY", keys.token_seal.to_hex());
    vars.insert("TREASURY_PUBKEY", keys.treasury.to_string());
    let c = api(&vars).expect("the api's configuration");
    assert_eq!(c.platform_keys().expect("keys"), keys);
    for var in WORKER_ONLY {
        let mut with = vars.clone();
        with.insert(var, "ab".repeat(32));
        match api(&with).map(|_| ()) {
            Err(ConfigError::Invalid { var: named, .. }) => assert_eq!(named, var),
            other => panic!("{var}: {other:?}"),
        }
    }
    // A worker checks that the public keys it was given are its own.
    assert!(c.check_worker_keys(&keys).is_ok());
    let other = {
        let sk = cdk::nuts::SecretKey::from_slice(&[7; 32]).expect("key");
        let treasury = <crate::domain::keys::XOnlyKey as std::str::FromStr>::from_str(
            &sk.public_key().x_only_public_key().to_string(),
        )
        .expect("x-only");
        crate::keyring::WorkerKeys::derive(&[0xcd; 32], treasury)
            .expect("keys")
            .public
    };
    assert!(matches!(
        c.check_worker_keys(&other),
        Err(ConfigError::Invalid {
            var: "QUOTE_LOCK_XPUB",
            ..
        })
    ));
}

#[test]
fn the_trade_data_secrets_are_required_and_well_formed() {
    let mut vars = base();
    vars.remove("DATA_SECRETS");
    assert_eq!(
        load(&vars).expect_err("no DATA_SECRETS"),
        ConfigError::Missing("DATA_SECRETS")
    );
    for bad in [
        "1".to_owned(),
        format!("0:{}", "ab".repeat(32)),
        "1:abcd".to_owned(),
    ]
    .iter()
    {
        let (named, text) = refused("DATA_SECRETS", bad);
        assert_eq!(named, "DATA_SECRETS", "{text}");
        assert!(!text.contains(&"ab".repeat(32)), "{text}");
    }
    vars.insert(
        "DATA_SECRETS",
        format!("2:{}, 1:{}", "ef".repeat(32), "da".repeat(32)),
    );
    assert_eq!(load(&vars).expect("rotated").data.current(), 2);
}
