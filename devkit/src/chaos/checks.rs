//! The chaos run's end checks: every offer terminal, every payout released once and redeemed
//! with its key at the mint, the audit balanced, no wallet holding sats the ledger does not
//! account for, no job dead, and no process that ended by itself.
//!
//! Reads PostgreSQL (`DATABASE_URL`) and the wallet files (read-only) as an operator would, and
//! the admin API for the audit and the alerts.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use cdk_common::bitcoin::hashes::{sha256, Hash};
use openpleb_common::trade::payouts::proof_message;
use openpleb_common::wallet::treasury::{LEGACY_TREASURY_WALLET, TREASURY_WALLET};
use serde_json::{json, Value};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, PgPool, Row};

use super::trade::TradeReport;
use crate::client::{call, redeem, Endpoints};

/// One check's verdict.
#[derive(Debug)]
pub struct Verdict {
    /// What was checked.
    pub name: &'static str,
    /// Whether it held.
    pub ok: bool,
    /// Figures, or what was wrong.
    pub detail: String,
}

fn verdict(name: &'static str, ok: bool, detail: String) -> Verdict {
    Verdict { name, ok, detail }
}

/// Waits until nothing is left in flight: every offer terminal, every payout released (the
/// platform's swept), every quote the traders paid minted. How long it took.
pub async fn settle(
    pool: &PgPool,
    reports: &[TradeReport],
    until: Instant,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let quotes: Vec<String> = reports
        .iter()
        .flat_map(|r| r.paid_quotes.iter().cloned())
        .collect();
    loop {
        let open: i64 = sqlx::query_scalar(
            "select (select count(*) from offers
                      where status not in ('COMPLETED','EXPIRED','RESOLVED','CANCELLED'))
                  + (select count(*) from payouts
                      where state = 'RECORDED' or (party = 'platform' and state <> 'SWEPT'))
                  + (select count(*) from wallet_quotes
                      where quote_id = any($1) and state <> 'ISSUED')",
        )
        .bind(&quotes)
        .fetch_one(pool)
        .await?;
        if open == 0 || Instant::now() > until {
            return Ok(started.elapsed());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Runs every check; figures go into the verdicts.
pub async fn run(
    env: &Endpoints,
    pool: &PgPool,
    reports: &[TradeReport],
    wallet_dirs: &[PathBuf],
) -> anyhow::Result<Vec<Verdict>> {
    let mut out = vec![
        offers_terminal(pool).await?,
        quotes_minted(pool, reports).await?,
    ];
    out.extend(payouts_redeemed(env, pool, reports).await?);
    out.push(audit(env, pool).await?);
    out.push(alerts(env).await?);
    out.push(wallets(pool, wallet_dirs).await?);
    Ok(out)
}

/// No api or worker ended by itself: the script counts the ones it found gone (besides its
/// own kills) into `file` while the run lasts.
pub fn no_exits(file: &Path) -> Verdict {
    let name = "exits by themselves == 0";
    match std::fs::read_to_string(file).map(|s| s.trim().parse::<u64>()) {
        Ok(Ok(0)) => verdict(name, true, "0 processes exited by themselves".to_owned()),
        Ok(Ok(n)) => verdict(
            name,
            false,
            format!("{n} processes exited by themselves (see the script's log)"),
        ),
        _ => verdict(name, false, format!("no count in {}", file.display())),
    }
}

async fn offers_terminal(pool: &PgPool) -> anyhow::Result<Verdict> {
    let rows = sqlx::query("select status, count(*) from offers group by status order by 1")
        .fetch_all(pool)
        .await?;
    let mut open = 0i64;
    let mut parts = Vec::new();
    for row in rows {
        let (status, n): (String, i64) = (row.try_get(0)?, row.try_get(1)?);
        if !super::trade::is_terminal(&status) {
            open += n;
        }
        parts.push(format!("{status} {n}"));
    }
    Ok(verdict("every offer terminal", open == 0, parts.join(", ")))
}

async fn quotes_minted(pool: &PgPool, reports: &[TradeReport]) -> anyhow::Result<Verdict> {
    let quotes: Vec<String> = reports
        .iter()
        .flat_map(|r| r.paid_quotes.iter().cloned())
        .collect();
    let stuck: Vec<String> = sqlx::query_scalar(
        "select quote_id || ' ' || state from wallet_quotes
          where quote_id = any($1) and state <> 'ISSUED'",
    )
    .bind(&quotes)
    .fetch_all(pool)
    .await?;
    let detail = if stuck.is_empty() {
        format!("{} paid invoices, all minted", quotes.len())
    } else {
        format!("not minted: {}", stuck.join("; "))
    };
    Ok(verdict(
        "every paid invoice minted",
        stuck.is_empty(),
        detail,
    ))
}

/// Fetches each trade's payouts by key (as an owner whose session ended would), redeems every
/// token with its key, and compares with the payout rows.
async fn payouts_redeemed(
    env: &Endpoints,
    pool: &PgPool,
    reports: &[TradeReport],
) -> anyhow::Result<Vec<Verdict>> {
    // Expected: every released payout locked to a key, by id: (offer, token value).
    let rows = sqlx::query(
        "select id, offer_id::text, amount_sats - fee_sats, state, token
           from payouts where party <> 'platform'",
    )
    .fetch_all(pool)
    .await?;
    let mut expected: HashMap<String, (String, i64)> = HashMap::new();
    let mut unreleased = 0;
    let mut tokens = HashSet::new();
    let mut duplicate_tokens = 0;
    for row in rows {
        let id: uuid::Uuid = row.try_get(0)?;
        let state: String = row.try_get(3)?;
        if state != "RELEASED" {
            unreleased += 1;
        }
        if let Some(t) = row.try_get::<Option<String>, _>(4)? {
            if !tokens.insert(t) {
                duplicate_tokens += 1;
            }
        }
        expected.insert(id.to_string(), (row.try_get(1)?, row.try_get(2)?));
    }
    let mut redeemed: HashMap<String, i64> = HashMap::new();
    let mut failures = Vec::new();
    let mut total = 0i64;
    for r in reports {
        let Some(offer) = &r.offer else { continue };
        for key in &r.keys {
            let list = by_key(env, offer, key).await?;
            for p in list.as_array().cloned().unwrap_or_default() {
                let id = p["id"].as_str().unwrap_or_default().to_owned();
                let Some(token) = p["token"].as_str() else {
                    failures.push(format!("payout {id} of {offer}: no token"));
                    continue;
                };
                if redeemed.contains_key(&id) {
                    continue;
                }
                let sk = cdk::nuts::SecretKey::from_slice(&key.secret_key().secret_bytes())?;
                match redeem(&env.mint, &[token.to_owned()], &sk).await {
                    Ok(sats) => {
                        let sats = i64::try_from(sats)?;
                        total += sats;
                        redeemed.insert(id, sats);
                    }
                    Err(e) => failures.push(format!("payout {id} of {offer}: {e:#}")),
                }
            }
        }
    }
    for (id, (offer, value)) in &expected {
        match redeemed.get(id) {
            Some(got) if got == value => {}
            Some(got) => failures.push(format!(
                "payout {id} of {offer}: redeemed {got}, owed {value}"
            )),
            None => failures.push(format!("payout {id} of {offer}: not reachable by its key")),
        }
    }
    let released_ok = unreleased == 0 && duplicate_tokens == 0;
    let mut v = vec![verdict(
        "every payout released once",
        released_ok,
        format!(
            "{} payouts to traders, {unreleased} unreleased, {duplicate_tokens} sharing a token",
            expected.len()
        ),
    )];
    failures.sort();
    let detail = if failures.is_empty() {
        format!(
            "{} tokens redeemed with their keys, {total} sats",
            redeemed.len()
        )
    } else {
        failures.join("; ")
    };
    v.push(verdict(
        "every payout redeemable",
        failures.is_empty(),
        detail,
    ));
    Ok(v)
}

async fn by_key(env: &Endpoints, offer: &str, key: &crate::Trader) -> anyhow::Result<Value> {
    let offer_id: uuid::Uuid = offer.parse()?;
    let ts = chrono::Utc::now().timestamp_millis();
    let digest = sha256::Hash::hash(proof_message(offer_id, ts).as_bytes()).to_byte_array();
    let body = json!({"payoutPubkey": key.pubkey(), "timestamp": ts,
                      "signature": key.sign_digest(digest)});
    call(
        "POST",
        &format!("{}/offers/{offer}/payouts/by-key", env.api),
        None,
        Some(&body),
    )
    .await
}

async fn audit(env: &Endpoints, pool: &PgPool) -> anyhow::Result<Verdict> {
    let a = call(
        "GET",
        &format!("{}/admin/audit", env.admin),
        Some(&env.admin_token),
        None,
    )
    .await?;
    let offers: i64 = sqlx::query_scalar("select count(*) from offers")
        .fetch_one(pool)
        .await?;
    let (sats_in, fee): (i64, i64) = sqlx::query_as(
        "select coalesce(sum(amount_sats) filter (where direction = 'in'), 0)::bigint,
                coalesce(sum(amount_sats) filter (where kind = 'platform_fee'), 0)::bigint
           from ledger_entries",
    )
    .fetch_one(pool)
    .await?;
    let checked = a["offersChecked"].as_i64().unwrap_or(-1);
    let ok = a["balanced"] == true && checked == offers;
    Ok(verdict(
        "audit balanced",
        ok,
        format!(
            "{checked} of {offers} offers checked, imbalances {}; ledger: {sats_in} sats in, \
             platform fees {fee}",
            a["imbalances"]
        ),
    ))
}

async fn alerts(env: &Endpoints) -> anyhow::Result<Verdict> {
    let a = call(
        "GET",
        &format!("{}/admin/alerts", env.admin),
        Some(&env.admin_token),
        None,
    )
    .await?;
    let empty = |k: &str| a[k].as_array().is_none_or(Vec::is_empty);
    let ok = empty("deadJobs")
        && empty("stuckOffers")
        && empty("overduePayouts")
        && empty("orphanedQuotes")
        && a["disputesWaitingForAdmin"] == 0;
    Ok(verdict(
        "no job dead, nothing stuck or overdue",
        ok,
        format!(
            "dead jobs {}, stuck offers {}, overdue payouts {}, orphaned quotes {}, disputes \
             waiting {}",
            a["deadJobs"],
            a["stuckOffers"],
            a["overduePayouts"],
            a["orphanedQuotes"],
            a["disputesWaitingForAdmin"]
        ),
    ))
}

/// Every wallet file's proofs against the ledger: with every offer settled a session wallet
/// owes nothing, so it must hold nothing; the treasury holds exactly the platform's swept share
/// less what withdrawals took out.
async fn wallets(pool: &PgPool, dirs: &[PathBuf]) -> anyhow::Result<Verdict> {
    let swept: i64 = sqlx::query_scalar(
        "select coalesce(sum(amount_sats - fee_sats), 0)::bigint from payouts
          where party = 'platform' and state = 'SWEPT'",
    )
    .fetch_one(pool)
    .await?;
    // What withdrawals took out of the treasury: a token's amount (its fee included), an
    // invoice's amount and fee.
    let withdrawn: i64 = sqlx::query_scalar(
        "select coalesce(sum(case state when 'SENT' then amount_sats
                                        else amount_sats + fee_sats end), 0)::bigint
           from treasury_withdrawals where state in ('SENT', 'PAID')",
    )
    .fetch_one(pool)
    .await?;
    let swept = swept - withdrawn;
    let mut files = Vec::new();
    for d in dirs {
        collect_db_files(d, &mut files)?;
    }
    let mut problems = Vec::new();
    let mut held: BTreeMap<String, i64> = BTreeMap::new();
    let mut treasury = 0;
    let mut in_use_count = 0;
    for f in &files {
        let name = f
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        let by_state = proofs_by_state(f).await?;
        let unspent = by_state.get("UNSPENT").copied().unwrap_or(0);
        let stuck: i64 = by_state
            .iter()
            .filter(|(s, _)| matches!(s.as_str(), "RESERVED" | "PENDING"))
            .map(|(_, v)| v)
            .sum();
        // The treasury wallet, and the legacy one until its balance moved over.
        if name == TREASURY_WALLET || name == LEGACY_TREASURY_WALLET {
            treasury += unspent;
        } else if in_use(pool, &name).await? {
            in_use_count += 1;
        } else if unspent + stuck != 0 {
            problems.push(format!(
                "{name} holds {unspent} unspent, {stuck} reserved/pending"
            ));
        }
        held.insert(name, unspent);
    }
    if treasury != swept {
        problems.push(format!(
            "treasury holds {treasury}, platform fees swept {swept}"
        ));
    }
    let detail = if problems.is_empty() {
        format!(
            "{} wallet files ({in_use_count} still backing an open offer or payout), the others \
             empty, treasury {treasury} = fees swept",
            files.len()
        )
    } else {
        problems.join("; ")
    };
    Ok(verdict(
        "no wallet holds sats the ledger does not account for",
        problems.is_empty(),
        detail,
    ))
}

/// Whether a session wallet still backs an offer that is not terminal or a payout not yet
/// released: then it holds sats the ledger owes someone, and is not judged.
async fn in_use(pool: &PgPool, wallet: &str) -> anyhow::Result<bool> {
    Ok(sqlx::query_scalar(
        "select exists (select 1 from offers
                         where status not in ('COMPLETED','EXPIRED','RESOLVED','CANCELLED')
                           and $1 in (session_wallet_id(maker_session_id),
                                      session_wallet_id(taker_session_id)))
             or exists (select 1 from payouts where state = 'RECORDED' and source_wallet = $1)",
    )
    .bind(wallet)
    .fetch_one(pool)
    .await?)
}

fn collect_db_files(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir).with_context(|| format!("{}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect_db_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "db") {
            out.push(path);
        }
    }
    Ok(())
}

async fn proofs_by_state(file: &Path) -> anyhow::Result<HashMap<String, i64>> {
    let mut conn = SqliteConnectOptions::new()
        .filename(file)
        .read_only(true)
        .connect()
        .await
        .with_context(|| format!("open {}", file.display()))?;
    let rows = sqlx::query("select state, coalesce(sum(amount), 0) from proof group by state")
        .fetch_all(&mut conn)
        .await
        .with_context(|| format!("proofs of {}", file.display()))?;
    let mut out = HashMap::new();
    for row in rows {
        out.insert(row.try_get::<String, _>(0)?, row.try_get::<i64, _>(1)?);
    }
    Ok(out)
}
