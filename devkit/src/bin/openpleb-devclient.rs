//! `openpleb-devclient`: plays traders against a running `scripts/dev` stack.
//!
//! - `openpleb-devclient bats [N]`: creates an invite (admin token), registers a fresh key,
//!   logs in at the dev OIDC issuer, mints N blind auth tokens (default 3) and prints them, one
//!   per line.
//! - `openpleb-devclient demo`: plays one whole trade as two new users would (invite,
//!   register, login, BATs, sessions, offer, funding, claim, bond, receipt, completion) and
//!   redeems both payouts with the payout keys, printing each step and the final balances.
//!   Exit 0 only if every sat arrived where it should.
//! - `openpleb-devclient dispute`: the same through an issue, a dispute, a counter and an
//!   admin's split.
//! - `openpleb-devclient chaos`: `CHAOS_TRADES` (50) trades at once through every ending while
//!   `scripts/chaos` kills processes under them, then the end checks (`openpleb_devkit::chaos`).
//!   Also reads `DEVMINT_PAY_URL`, `DATABASE_URL`, `WALLETS_DIR`, `CHAOS_STAGGER_MS` (400),
//!   `CHAOS_SHORT_LIFETIME_SECS` (60, the least an offer may ask), `CHAOS_TIMEOUT_SECS` (600), `CHAOS_SETTLE_SECS` (60),
//!   `CHAOS_CALM_FILE`, `CHAOS_EXITS_FILE`. Exit 0
//!   only if every trade ended and every check held.
//!
//! - `openpleb-devclient key`: prints a fresh secret key and its x-only pubkey (hex, one line,
//!   space-separated), for a registered key or a payout key.
//! - `openpleb-devclient sign-registration SECRET INVITE`: signs the registration of the key
//!   `SECRET` with invite code `INVITE` now and prints its nonce, timestamp and signature
//!   (space-separated).
//! - `openpleb-devclient bats-for SECRET [N]`: logs the registered key `SECRET` in at the dev
//!   OIDC issuer and prints N fresh BATs (default 1), one per line.
//! - `openpleb-devclient redeem SECRET TOKEN...`: redeems payout tokens locked to `SECRET` at
//!   the mint and prints the sats received.
//!
//! (These four let `scripts/contract_trade.py` play a trade through the generated Python client:
//! it cannot sign BIP-340 or speak to the mint itself.)
//!
//! Reads `API_URL` (`http://127.0.0.1:3000/api/v1`), `ADMIN_URL`
//! (`http://127.0.0.1:3001/api/v1`), `ADMIN_TOKEN`, `MINT_URL` (`http://127.0.0.1:3338`) and
//! `DEVOIDC_URL` (`http://127.0.0.1:3339`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use cdk::nuts::SecretKey;
use openpleb_common::domain::role::Role;
use openpleb_devkit::chaos::{run as run_chaos, ChaosOptions};
use openpleb_devkit::client::{
    call, fresh_bat, new_party, payout_key, redeem, registered_key, reveal, upload_receipt,
    Endpoints, Party,
};
use openpleb_devkit::oidc::login_digest;
use openpleb_devkit::push::{Browser, PushService};
use openpleb_devkit::stack::mint_bats;
use openpleb_devkit::Trader;
use serde_json::{json, Value};

fn var(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

async fn wait_for(env: &Endpoints, who: &Party, id: &str, status: &str) -> anyhow::Result<Value> {
    for _ in 0..120 {
        let v = call(
            "GET",
            &format!("{}/offers/{id}", env.api),
            Some(&who.bat),
            None,
        )
        .await?;
        if v["status"] == status {
            return Ok(v);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    bail!("offer {id} never reached {status}")
}

async fn payouts(env: &Endpoints, who: &Party, id: &str) -> anyhow::Result<Vec<String>> {
    for _ in 0..120 {
        let v = call(
            "GET",
            &format!("{}/offers/{id}/payouts", env.api),
            Some(&who.bat),
            None,
        )
        .await?;
        let list = v.as_array().cloned().unwrap_or_default();
        if !list.is_empty() && list.iter().all(|p| p["state"] == "RELEASED") {
            return Ok(list
                .iter()
                .filter_map(|p| p["token"].as_str().map(str::to_owned))
                .collect());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    bail!("payouts of {id} were not released")
}

/// A trade taken as far as the receipt: the parties, the offer and its amounts.
struct Receipted {
    maker: Party,
    taker: Party,
    id: String,
    funded: Value,
    maker_sk: SecretKey,
    taker_sk: SecretKey,
}

/// A push service standing in for the maker's phone, subscribed with the server's VAPID key;
/// `None` when the server sends no Web Push.
async fn maker_phone(env: &Endpoints) -> anyhow::Result<Option<(PushService, Browser)>> {
    let key = match call("GET", &format!("{}/push/key", env.api), None, None).await {
        Ok(v) => v["publicKey"].as_str().context("publicKey")?.to_owned(),
        Err(_) => {
            println!("[maker] this server sends no Web Push (no VAPID_PRIVATE_KEY)");
            return Ok(None);
        }
    };
    let push = PushService::start(Some(key)).await?;
    let browser = push.subscribe();
    Ok(Some((push, browser)))
}

async fn to_receipt(env: &Endpoints) -> anyhow::Result<Receipted> {
    let provider = call(
        "POST",
        &format!("{}/admin/fiat-providers", env.admin),
        Some(&env.admin_token),
        Some(&json!({"name": format!("SEPA demo {}", uuid::Uuid::new_v4().simple()), "kind": "bank_transfer"})),
    )
    .await?;
    let provider_id = provider["id"].as_str().context("provider")?.to_owned();
    println!("[admin] fiat provider {provider_id}");
    let maker = new_party(env, "maker", true).await?;
    let taker = new_party(env, "taker", true).await?;

    let (maker_sk, maker_key) = payout_key();
    // The maker's phone: a push subscription at the devkit's push service, which checks and
    // decrypts what arrives as a browser would.
    let phone = maker_phone(env).await?;
    let mut offer = json!({"fiatAmount": 2500, "currency": "EUR", "fiatProviderId": provider_id,
                           "paymentDetails": "IBAN DE89 3704 0044 0532 0130 00",
                           "description": "demo", "makerPayoutPubkey": maker_key});
    if let Some((_, browser)) = &phone {
        offer["notify"] = json!({"push": browser.json()});
        println!("[maker] subscribed its phone to this offer's notices (Web Push)");
    }
    let created = call(
        "POST",
        &format!("{}/offers", env.api),
        Some(&maker.bat),
        Some(&offer),
    )
    .await?;
    let id = created["offer"]["id"]
        .as_str()
        .context("offer id")?
        .to_owned();
    println!(
        "[maker] offer {id}: 25.00 EUR; deposit invoice for {} sats (the dev mint pays it)",
        created["deposit"]["amountSats"]
    );
    let funded = wait_for(env, &maker, &id, "INVOICE_PAID").await?;
    println!("[maker] funded: the offer is in the book");

    let (taker_sk, taker_key) = payout_key();
    let claim = call(
        "POST",
        &format!("{}/offers/{id}/claim", env.api),
        Some(&taker.bat),
        Some(&json!({"takerPayoutPubkey": taker_key})),
    )
    .await?;
    println!(
        "[taker] claimed; bond invoice for {} sats",
        claim["bond"]["amountSats"]
    );
    let bonded = wait_for(env, &taker, &id, "TAKER_BOND_PAID").await?;
    println!(
        "[taker] bond paid; pays the fiat to {}",
        bonded["paymentDetails"]
    );
    upload_receipt(env, &taker, &id).await?;
    println!("[taker] receipt uploaded");
    if let Some((push, browser)) = &phone {
        let got = push.wait_for(browser, 2, Duration::from_secs(20)).await;
        match got.last() {
            Some(d) if got.len() >= 2 => println!(
                "[maker's phone] push notification: status {}, action {}, deadline {}",
                d.body["status"], d.body["action"], d.body["deadline"]
            ),
            _ => bail!("the maker's phone was not told of the receipt: {got:?}"),
        }
    }
    Ok(Receipted {
        maker,
        taker,
        id,
        funded,
        maker_sk,
        taker_sk,
    })
}

async fn demo(env: &Endpoints) -> anyhow::Result<()> {
    let t = to_receipt(env).await?;
    let id = &t.id;
    call(
        "POST",
        &format!("{}/offers/{id}/complete", env.api),
        Some(&t.maker.bat),
        None,
    )
    .await?;
    println!("[maker] confirmed the fiat arrived: COMPLETED");

    let taker_tokens = payouts(env, &t.taker, id).await?;
    let maker_tokens = payouts(env, &t.maker, id).await?;
    let got_taker = redeem(&env.mint, &taker_tokens, &t.taker_sk).await?;
    let got_maker = redeem(&env.mint, &maker_tokens, &t.maker_sk).await?;
    let n = |k: &str| t.funded[k].as_u64().unwrap_or(0);
    let (s, tf, tb, mb) = (
        n("amountSats"),
        n("takerRewardSats"),
        n("takerBondSats"),
        n("makerBondSats"),
    );
    println!("[taker] redeemed {got_taker} sats (S {s} + reward {tf} + bond {tb})");
    println!("[maker] redeemed {got_maker} sats (maker bond {mb})");
    if got_taker != s + tf + tb || got_maker != mb {
        bail!("payouts do not match the money table");
    }
    println!("demo complete: every sat where it belongs");
    Ok(())
}

/// A trade taken to a dispute that waits for an admin: the maker marks an issue, the taker
/// disputes it and the maker counters (both reveal their registered keys).
async fn dispute_to_admin(env: &Endpoints) -> anyhow::Result<Receipted> {
    let t = to_receipt(env).await?;
    let id = &t.id;
    let issue = json!({"reason": "not_received", "message": "nothing arrived",
                       "reveal": reveal(&t.maker, id, Role::Maker)?});
    call(
        "POST",
        &format!("{}/offers/{id}/issue", env.api),
        Some(&t.maker.bat),
        Some(&issue),
    )
    .await?;
    println!("[maker] marked an issue (not received), revealing its registered key");
    let dispute = json!({"action": "DISPUTE", "message": "I paid; see the receipt",
                         "reveal": reveal(&t.taker, id, Role::Taker)?});
    let answer = format!("{}/offers/{id}/issue/answer", env.api);
    call("POST", &answer, Some(&t.taker.bat), Some(&dispute)).await?;
    println!("[taker] disputed it, revealing its registered key");
    let counter = json!({"action": "COUNTER", "message": "still nothing on my account"});
    let answer = format!("{}/offers/{id}/dispute/answer", env.api);
    call("POST", &answer, Some(&t.maker.bat), Some(&counter)).await?;
    println!("[maker] countered: an admin decides");
    Ok(t)
}

/// A trade that goes issue → dispute → counter → admin resolution (SPLIT); both parties
/// redeem their halves with the registered keys they revealed.
async fn dispute_demo(env: &Endpoints) -> anyhow::Result<()> {
    let t = dispute_to_admin(env).await?;
    let id = &t.id;
    let file = call(
        "GET",
        &format!("{}/admin/disputes/{id}", env.admin),
        Some(&env.admin_token),
        None,
    )
    .await?;
    println!(
        "[admin] dispute file: stage {}, {} messages, maker key {}",
        file["dispute"]["stage"],
        file["dispute"]["messages"].as_array().map_or(0, Vec::len),
        file["maker"]["pubkey"]
    );
    let resolve = json!({"resolution": "SPLIT", "note": "both accounts are plausible"});
    let path = format!("{}/admin/disputes/{id}/resolve", env.admin);
    call("POST", &path, Some(&env.admin_token), Some(&resolve)).await?;
    println!("[admin] resolved: SPLIT");

    let maker_key = registered_key(&t.maker)?;
    let taker_key = registered_key(&t.taker)?;
    let got_maker = redeem(&env.mint, &payouts(env, &t.maker, id).await?, &maker_key).await?;
    let got_taker = redeem(&env.mint, &payouts(env, &t.taker, id).await?, &taker_key).await?;
    let n = |k: &str| t.funded[k].as_u64().unwrap_or(0);
    let pot = n("amountSats") + n("takerRewardSats") + n("makerBondSats") + n("takerBondSats");
    println!("[maker] redeemed {got_maker} sats with its registered key");
    println!("[taker] redeemed {got_taker} sats with its registered key");
    if got_maker != pot / 2 || got_taker != pot - pot / 2 {
        bail!("the split does not match the money table (pot {pot})");
    }
    println!("dispute demo complete: the pot of {pot} sats split by the table");
    Ok(())
}

/// The `chaos` command: its settings from the environment (see `scripts/chaos`).
async fn chaos(env: &Endpoints) -> anyhow::Result<bool> {
    let num = |name: &str, default: u64| -> anyhow::Result<u64> {
        std::env::var(name)
            .ok()
            .map(|v| v.parse().with_context(|| name.to_owned()))
            .transpose()
            .map(|v| v.unwrap_or(default))
    };
    let opts = ChaosOptions {
        trades: usize::try_from(num("CHAOS_TRADES", 50)?)?,
        stagger: Duration::from_millis(num("CHAOS_STAGGER_MS", 400)?),
        pay_url: var("DEVMINT_PAY_URL", "http://127.0.0.1:3340/pay"),
        database_url: std::env::var("DATABASE_URL").context("DATABASE_URL is required")?,
        wallet_dirs: var("WALLETS_DIR", "./data/wallets")
            .split(',')
            .map(PathBuf::from)
            .collect(),
        short_lifetime: num("CHAOS_SHORT_LIFETIME_SECS", 60)?,
        timeout: Duration::from_secs(num("CHAOS_TIMEOUT_SECS", 600)?),
        settle: Duration::from_secs(num("CHAOS_SETTLE_SECS", 60)?),
        calm_file: std::env::var("CHAOS_CALM_FILE").ok().map(PathBuf::from),
        exits_file: std::env::var("CHAOS_EXITS_FILE").ok().map(PathBuf::from),
    };
    run_chaos(env, &opts).await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let cmd = args.next();
    // Offline helpers first: they need no running stack.
    match cmd.as_deref() {
        Some("key") => {
            let t = Trader::new();
            println!("{} {}", t.secret_hex(), t.pubkey());
            return Ok(());
        }
        Some("sign-registration") => {
            let secret = args
                .next()
                .context("usage: sign-registration SECRET INVITE")?;
            let invite = args
                .next()
                .context("usage: sign-registration SECRET INVITE")?;
            let reg = Trader::from_secret_hex(&secret)?.registration(&invite);
            println!(
                "{} {} {}",
                reg["nonce"].as_str().context("nonce")?,
                reg["timestamp"].as_i64().context("timestamp")?,
                reg["signature"].as_str().context("signature")?
            );
            return Ok(());
        }
        _ => {}
    }
    let env = Endpoints {
        api: var("API_URL", "http://127.0.0.1:3000/api/v1"),
        admin: var("ADMIN_URL", "http://127.0.0.1:3001/api/v1"),
        admin_token: std::env::var("ADMIN_TOKEN").context("ADMIN_TOKEN is required")?,
        mint: var("MINT_URL", "http://127.0.0.1:3338"),
        issuer: var("DEVOIDC_URL", "http://127.0.0.1:3339"),
    };
    match cmd.as_deref() {
        Some("bats") => {
            let n: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(3);
            let party = new_party(&env, "trader", true).await;
            // `new_party` already spent one BAT on a session; mint the requested ones fresh.
            let party = party?;
            let ts = chrono::Utc::now().timestamp_millis();
            let login = json!({
                "grant_type": "openpleb_pubkey", "pubkey": party.trader.pubkey(), "timestamp": ts,
                "signature": party.trader.sign_digest(login_digest(&party.trader.pubkey(), ts)),
            });
            let token = call("POST", &format!("{}/token", env.issuer), None, Some(&login)).await?;
            let cat = token["access_token"].as_str().context("access token")?;
            for bat in mint_bats(&env.mint, cat, n).await? {
                println!("{bat}");
            }
            Ok(())
        }
        Some("bats-for") => {
            let secret = args.next().context("usage: bats-for SECRET [N]")?;
            let n: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1);
            let trader = Trader::from_secret_hex(&secret)?;
            for _ in 0..n {
                println!("{}", fresh_bat(&env, &trader).await?);
            }
            Ok(())
        }
        Some("redeem") => {
            let secret = args.next().context("usage: redeem SECRET TOKEN...")?;
            let key = SecretKey::from_hex(&secret)?;
            let tokens: Vec<String> = args.collect();
            println!("{}", redeem(&env.mint, &tokens, &key).await?);
            Ok(())
        }
        Some("demo") => demo(&env).await,
        Some("dispute") => dispute_demo(&env).await,
        Some("open-dispute") => {
            // For tools that need a dispute to look at (scripts/contract's stateful phase):
            // the last line is the offer's id and the taker's bearer token.
            let t = dispute_to_admin(&env).await?;
            println!("{} {}", t.id, t.taker.bat);
            Ok(())
        }
        Some("chaos") => {
            if !chaos(&env).await? {
                std::process::exit(1);
            }
            Ok(())
        }
        _ => {
            eprintln!(
                "usage: openpleb-devclient bats [N] | demo | dispute | open-dispute | chaos | key \
                 | sign-registration SECRET INVITE | bats-for SECRET [N] | redeem SECRET TOKEN..."
            );
            std::process::exit(2);
        }
    }
}
