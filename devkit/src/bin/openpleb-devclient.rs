//! `openpleb-devclient`: plays traders against a running `scripts/dev` stack.
//!
//! - `openpleb-devclient bats [N]`: creates an invite (admin token), registers a fresh key,
//!   logs in at the dev OIDC issuer, mints N blind auth tokens (default 3) and prints them, one
//!   per line.
//! - `openpleb-devclient demo`: plays one whole trade as two new users would (invite,
//!   register, login, BATs, sessions, offer, funding, claim, bond, receipt, completion) and
//!   redeems both payouts with the payout keys, printing each step and the final balances.
//!   Exit 0 only if every sat arrived where it should.
//!
//! Reads `API_URL` (`http://127.0.0.1:3000/api/v1`), `ADMIN_URL`
//! (`http://127.0.0.1:3001/api/v1`), `ADMIN_TOKEN`, `MINT_URL` (`http://127.0.0.1:3338`) and
//! `DEVOIDC_URL` (`http://127.0.0.1:3339`).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use cdk::nuts::{CurrencyUnit, SecretKey};
use cdk::wallet::{ReceiveOptions, WalletBuilder};
use openpleb_common::domain::dispute::reveal_digest;
use openpleb_common::domain::role::Role;
use openpleb_common::wallet::store::{SqlxSqliteConfig, WalletSqlxDatabase};
use openpleb_devkit::oidc::login_digest;
use openpleb_devkit::stack::mint_bats;
use openpleb_devkit::Trader;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Env {
    api: String,
    admin: String,
    admin_token: String,
    mint: String,
    issuer: String,
}

fn var(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

async fn call(
    method: &str,
    url: &str,
    bearer: Option<&str>,
    body: Option<&Value>,
) -> anyhow::Result<Value> {
    let http = cdk::http_client::HttpClient::new();
    let mut req = match method {
        "GET" => http.get(url),
        _ => http.post(url),
    };
    if let Some(b) = body {
        req = req.json(b);
    }
    if let Some(token) = bearer {
        req = req.header("Authorization", format!("Bearer {token}"));
    }
    let resp = req
        .send()
        .await
        .with_context(|| format!("{method} {url}"))?;
    let text = resp.body_lossy();
    if !resp.is_success() {
        bail!("{method} {url}: {} {text}", resp.status());
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A registered trader with a live session. Progress goes to stderr so that `bats` can print
/// only tokens on stdout.
struct Party {
    trader: Trader,
    bat: String,
}

async fn new_party(env: &Env, name: &str) -> anyhow::Result<Party> {
    let invite = call(
        "POST",
        &format!("{}/admin/invite-codes", env.admin),
        Some(&env.admin_token),
        Some(&json!({})),
    )
    .await?;
    let code = invite["code"].as_str().context("invite code")?;
    eprintln!("[{name}] got invite code {code}");
    let trader = Trader::new();
    call(
        "POST",
        &format!("{}/users/register", env.api),
        None,
        Some(&trader.registration(code)),
    )
    .await?;
    eprintln!("[{name}] registered pubkey {}", trader.pubkey());
    let ts = chrono::Utc::now().timestamp_millis();
    let login = json!({
        "grant_type": "openpleb_pubkey", "pubkey": trader.pubkey(), "timestamp": ts,
        "signature": trader.sign_digest(login_digest(&trader.pubkey(), ts)),
    });
    let token = call("POST", &format!("{}/token", env.issuer), None, Some(&login)).await?;
    let cat = token["access_token"].as_str().context("access token")?;
    eprintln!("[{name}] logged in at the OIDC issuer");
    let bat = mint_bats(&env.mint, cat, 1).await?.remove(0);
    eprintln!("[{name}] minted a blind auth token at the mint");
    call(
        "POST",
        &format!("{}/sessions", env.api),
        None,
        Some(&json!({"bat": bat})),
    )
    .await?;
    eprintln!("[{name}] opened an anonymous session with it");
    Ok(Party { trader, bat })
}

async fn wait_for(env: &Env, who: &Party, id: &str, status: &str) -> anyhow::Result<Value> {
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

async fn payouts(env: &Env, who: &Party, id: &str) -> anyhow::Result<Vec<String>> {
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

/// Uploads the receipt as multipart/form-data (plain HTTP to the local dev stack).
async fn upload_receipt(env: &Env, who: &Party, id: &str) -> anyhow::Result<()> {
    const PNG: &[u8] = &[
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44,
        0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f,
        0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0a, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00,
        0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49,
        0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
    ];
    let url = format!("{}/offers/{id}/receipt", env.api);
    let rest = url
        .strip_prefix("http://")
        .context("the demo speaks plain HTTP")?;
    let (host, path) = rest.split_once('/').context("url")?;
    let boundary = "openplebdemoboundary";
    let mut body = Vec::new();
    body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"receipt.png\"\r\nContent-Type: image/png\r\n\r\n").as_bytes());
    body.extend_from_slice(PNG);
    body.extend_from_slice(format!("\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\npaid by the demo\r\n--{boundary}--\r\n").as_bytes());
    let head = format!(
        "POST /{path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        who.bat,
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(host).await?;
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&body).await?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    if !answer.starts_with("HTTP/1.1 200") {
        bail!(
            "receipt upload: {}",
            answer.lines().next().unwrap_or_default()
        );
    }
    Ok(())
}

/// Redeems `tokens` into a fresh wallet with `key`; returns the sats.
async fn redeem(env: &Env, tokens: &[String], key: &SecretKey) -> anyhow::Result<u64> {
    let db = Arc::new(WalletSqlxDatabase::new(SqlxSqliteConfig::memory()).await?);
    let mut seed = [0u8; 64];
    seed[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    let wallet = WalletBuilder::new()
        .mint_url(env.mint.parse().context("mint url")?)
        .unit(CurrencyUnit::Sat)
        .localstore(db)
        .seed(seed)
        .without_rate_limiting()
        .build()?;
    let mut total = 0u64;
    for t in tokens {
        let opts = ReceiveOptions {
            p2pk_signing_keys: vec![key.clone()],
            ..Default::default()
        };
        total += u64::from(wallet.receive(t, opts).await?);
    }
    Ok(total)
}

fn key() -> (SecretKey, String) {
    let sk = SecretKey::generate();
    let x = sk.public_key().x_only_public_key().to_string();
    (sk, x)
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

async fn to_receipt(env: &Env) -> anyhow::Result<Receipted> {
    let provider = call(
        "POST",
        &format!("{}/admin/fiat-providers", env.admin),
        Some(&env.admin_token),
        Some(&json!({"name": format!("SEPA demo {}", uuid::Uuid::new_v4().simple()), "kind": "bank_transfer"})),
    )
    .await?;
    let provider_id = provider["id"].as_str().context("provider")?.to_owned();
    println!("[admin] fiat provider {provider_id}");
    let maker = new_party(env, "maker").await?;
    let taker = new_party(env, "taker").await?;

    let (maker_sk, maker_key) = key();
    let created = call(
        "POST",
        &format!("{}/offers", env.api),
        Some(&maker.bat),
        Some(
            &json!({"fiatAmount": 2500, "currency": "EUR", "fiatProviderId": provider_id,
                     "paymentDetails": "IBAN DE89 3704 0044 0532 0130 00", "description": "demo",
                     "makerPayoutPubkey": maker_key}),
        ),
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

    let (taker_sk, taker_key) = key();
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
    Ok(Receipted {
        maker,
        taker,
        id,
        funded,
        maker_sk,
        taker_sk,
    })
}

async fn demo(env: &Env) -> anyhow::Result<()> {
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
    let got_taker = redeem(env, &taker_tokens, &t.taker_sk).await?;
    let got_maker = redeem(env, &maker_tokens, &t.maker_sk).await?;
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

/// A reveal of `who`'s registered key for offer `id` as `role`, signed now.
fn reveal(who: &Party, id: &str, role: Role) -> anyhow::Result<Value> {
    let ts = chrono::Utc::now().timestamp_millis();
    let offer: uuid::Uuid = id.parse()?;
    Ok(json!({
        "pubkey": who.trader.pubkey(), "timestamp": ts,
        "signature": who.trader.sign_digest(reveal_digest(offer, role, ts)),
    }))
}

/// A trade that goes issue → dispute → counter → admin resolution (SPLIT); both parties
/// redeem their halves with the registered keys they revealed.
async fn dispute_demo(env: &Env) -> anyhow::Result<()> {
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

    let maker_key = SecretKey::from_slice(&t.maker.trader.secret_key().secret_bytes())?;
    let taker_key = SecretKey::from_slice(&t.taker.trader.secret_key().secret_bytes())?;
    let got_maker = redeem(env, &payouts(env, &t.maker, id).await?, &maker_key).await?;
    let got_taker = redeem(env, &payouts(env, &t.taker, id).await?, &taker_key).await?;
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let cmd = args.next();
    let env = Env {
        api: var("API_URL", "http://127.0.0.1:3000/api/v1"),
        admin: var("ADMIN_URL", "http://127.0.0.1:3001/api/v1"),
        admin_token: std::env::var("ADMIN_TOKEN").context("ADMIN_TOKEN is required")?,
        mint: var("MINT_URL", "http://127.0.0.1:3338"),
        issuer: var("DEVOIDC_URL", "http://127.0.0.1:3339"),
    };
    match cmd.as_deref() {
        Some("bats") => {
            let n: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(3);
            let party = new_party(&env, "trader").await;
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
        Some("demo") => demo(&env).await,
        Some("dispute") => dispute_demo(&env).await,
        _ => {
            eprintln!("usage: openpleb-devclient bats [N] | demo | dispute");
            std::process::exit(2);
        }
    }
}
