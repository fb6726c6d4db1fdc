//! `openpleb-devclient`: plays a trader against a running `scripts/dev` stack.
//!
//! `openpleb-devclient bats [N]` creates an invite (admin token), registers a fresh key,
//! logs in at the dev OIDC issuer, mints N blind auth tokens (default 3) at the mint and prints
//! them, one per line, on stdout; the key goes to stderr. Use a BAT with
//! `curl -H "Authorization: Bearer <BAT>"` after `POST /api/v1/sessions`.
//!
//! Reads `API_URL` (`http://127.0.0.1:3000/api/v1`), `ADMIN_URL`
//! (`http://127.0.0.1:3001/api/v1`), `ADMIN_TOKEN`, `MINT_URL` (`http://127.0.0.1:3338`) and
//! `DEVOIDC_URL` (`http://127.0.0.1:3339`).

use anyhow::{bail, Context};
use openpleb_devkit::oidc::login_digest;
use openpleb_devkit::stack::mint_bats;
use openpleb_devkit::Trader;
use serde_json::{json, Value};

fn var(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

async fn post(url: &str, bearer: Option<&str>, body: &Value) -> anyhow::Result<Value> {
    let mut req = cdk::http_client::HttpClient::new().post(url).json(body);
    if let Some(token) = bearer {
        req = req.header("Authorization", format!("Bearer {token}"));
    }
    let resp = req.send().await.with_context(|| format!("POST {url}"))?;
    let text = resp.body_lossy();
    if !resp.is_success() {
        bail!("POST {url}: {} {text}", resp.status());
    }
    Ok(serde_json::from_str(&text)?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() != Some("bats") {
        eprintln!("usage: openpleb-devclient bats [N]");
        std::process::exit(2);
    }
    let n: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(3);
    let api = var("API_URL", "http://127.0.0.1:3000/api/v1");
    let admin = var("ADMIN_URL", "http://127.0.0.1:3001/api/v1");
    let admin_token = std::env::var("ADMIN_TOKEN").context("ADMIN_TOKEN is required")?;
    let mint = var("MINT_URL", "http://127.0.0.1:3338");
    let issuer = var("DEVOIDC_URL", "http://127.0.0.1:3339");

    let invite = post(
        &format!("{admin}/admin/invite-codes"),
        Some(&admin_token),
        &json!({}),
    )
    .await?;
    let code = invite["code"].as_str().context("invite code")?;
    let trader = Trader::new();
    post(
        &format!("{api}/users/register"),
        None,
        &trader.registration(code),
    )
    .await?;
    eprintln!("registered pubkey {}", trader.pubkey());

    let ts = chrono::Utc::now().timestamp_millis();
    let login = json!({
        "grant_type": "openpleb_pubkey", "pubkey": trader.pubkey(), "timestamp": ts,
        "signature": trader.sign_digest(login_digest(&trader.pubkey(), ts)),
    });
    let token = post(&format!("{issuer}/token"), None, &login).await?;
    let cat = token["access_token"].as_str().context("access token")?;
    for bat in mint_bats(&mint, cat, n).await? {
        println!("{bat}");
    }
    Ok(())
}
