//! The mint's promises are checked, not assumed.
//!
//! - The api binary started against a mint that does not advertise NUT-20 exits with code 2
//!   and one line naming it; against the normal dev mint it starts and stays up (both while
//!   PostgreSQL is unreachable: the mint's first answer decides).
//! - A deposit quote the mint reports ISSUED that the worker's wallet never minted is not
//!   credited: someone holding the quote's key (the test derives it as the worker does, which
//!   is what a mint ignoring the NUT-20 lock would allow anyone) minted it first; the offer
//!   stays CREATED, nothing is booked, the quote is given up and counted, and a deposit paid
//!   the ordinary way next to it is still credited.

mod common;
#[allow(dead_code)]
#[path = "outage/support.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use cdk::amount::SplitTarget;
use cdk::nuts::{CurrencyUnit, PaymentMethod};
use cdk::wallet::types::MintQuote;
use cdk::wallet::WalletBuilder;
use cdk::Amount;
use common::{body, offer_with_invoice, Harness};
use openpleb_common::db::quotes;
use openpleb_common::domain::payout::QuoteState;
use openpleb_common::trade::quote::lock_of;
use openpleb_common::wallet::store::{SqlxSqliteConfig, WalletSqlxDatabase};
use openpleb_common::wallet::{MintOutcome, WalletId};
use openpleb_devkit::oidc::{DevOidc, DevOidcOptions, DEV_CLIENT_ID};
use openpleb_devkit::scenario::check::refuses_to_start_aside;
use openpleb_devkit::stack::DEV_SERVICE_SECRET;
use openpleb_devkit::{DevMint, DevMintOptions, MintAuthOptions};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use support::{api_command, free_port, wait_until, ApiProcess, OIDC_TOKEN};

/// A dev mint with the auth the api relies on, its issuer, and `without_nuts` left out of
/// its `/v1/info`.
async fn mint_without(without_nuts: Vec<u8>) -> (DevMint, DevOidc) {
    let oidc = DevOidc::start(DevOidcOptions {
        listen: ([127, 0, 0, 1], 0).into(),
        backend_admin_url: "http://127.0.0.1:9/api/v1".to_owned(),
        backend_token: OIDC_TOKEN.to_owned(),
        service_secret: DEV_SERVICE_SECRET.to_owned(),
    })
    .await
    .expect("issuer");
    let mint = DevMint::start_with(DevMintOptions {
        auth: Some(MintAuthOptions::openpleb(
            oidc.discovery_url.clone(),
            DEV_CLIENT_ID,
        )),
        without_nuts,
        ..DevMintOptions::default()
    })
    .await
    .expect("mint");
    (mint, oidc)
}

/// A PostgreSQL nobody answers at: the mint's answer alone decides.
const NO_DATABASE: &str = "postgres://127.0.0.1:1/none";

#[tokio::test]
async fn a_mint_without_nut20_stops_the_api() {
    let (mint, _oidc) = mint_without(vec![20]).await;
    let stderr = refuses_to_start_aside(api_command(NO_DATABASE, &mint.url))
        .await
        .expect("refused");
    let says = openpleb_devkit::mint::lacks_nut20(&mint.url);
    assert!(stderr.contains(&says), "{stderr}");
    assert!(
        !stderr.contains("also lacks"),
        "only NUT-20 is missing: {stderr}"
    );
    mint.stop().await.expect("stop mint");
}

/// The positive control: the same start against the dev mint as it is.
#[tokio::test]
async fn the_api_starts_against_a_mint_with_what_it_relies_on() {
    let (mint, _oidc) = mint_without(Vec::new()).await;
    let dir = tempfile::tempdir().expect("dir");
    let mut api = ApiProcess::start(NO_DATABASE, &mint.url, dir.path(), free_port());
    api.wait_listening().await;
    // The mint watcher records the mint up right after its check of the first answer.
    wait_until(Duration::from_secs(30), "the api sees the mint", || async {
        api.ready("").await.body["mint"] == true
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    api.assert_running();
    drop(api);
    mint.stop().await.expect("stop mint");
}

#[sqlx::test(migrations = false)]
async fn an_issued_quote_without_our_own_issue_is_not_credited(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let mut h = Harness::start_manual(opts, conn).await;
    // The worker that would mint the deposit is away while someone else mints it.
    h.stop_worker().await;
    let provider = h.provider().await;
    let maker = h.session().await;
    let (offer, invoice, sats, _) = offer_with_invoice(&h, &maker, provider).await;
    let quote_id: String = sqlx::query_scalar("select deposit_quote_id from offers where id = $1")
        .bind(offer)
        .fetch_one(&h.pool)
        .await
        .expect("deposit quote");
    let quote = quotes::get(&h.pool, &quote_id)
        .await
        .expect("get")
        .expect("quote row");
    let ctx = h.trade_ctx();
    let lock = lock_of(&ctx, &quote)
        .expect("lock")
        .expect("the api locks deposit quotes (NUT-20)");
    let wallet = WalletId::parse(&quote.wallet_id).expect("wallet id");
    h.pay(&invoice, sats).await;

    // Someone with the quote's key mints it into a wallet of their own.
    let key = lock.key.clone();
    let db = WalletSqlxDatabase::new(SqlxSqliteConfig::memory())
        .await
        .expect("thief db");
    let mut seed = [0u8; 64];
    seed[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    let thief = WalletBuilder::new()
        .mint_url(h.stack.mint.url.parse().expect("mint url"))
        .unit(CurrencyUnit::Sat)
        .localstore(Arc::new(db))
        .seed(seed)
        .without_rate_limiting()
        .build()
        .expect("thief wallet");
    let known = MintQuote::new(
        quote_id.clone(),
        h.stack.mint.url.parse().expect("mint url"),
        PaymentMethod::BOLT11,
        Some(Amount::from(sats)),
        CurrencyUnit::Sat,
        invoice.clone(),
        lock.expiry,
        Some(key),
    );
    thief
        .localstore
        .add_mint_quote(known)
        .await
        .expect("add quote");
    thief
        .check_mint_quote_status(&quote_id)
        .await
        .expect("status");
    let stolen = thief
        .mint(&quote_id, SplitTarget::default(), None)
        .await
        .expect("mint elsewhere");
    assert_eq!(
        stolen.iter().map(|p| u64::from(p.amount)).sum::<u64>(),
        sats
    );

    // Our wallet never minted it: the mint's ISSUED is not our deposit (asked twice: the same).
    for _ in 0..2 {
        let outcome = h
            .worker_wallets
            .mint_quote_with(&wallet, &quote_id, Some(lock.clone()))
            .await
            .expect("ask");
        assert_eq!(outcome, MintOutcome::IssuedElsewhere);
    }

    // A worker comes back: its watcher gives the quote up and credits nothing.
    let (stop, worker) = h.second_worker();
    wait_until(Duration::from_secs(30), "the quote given up", || async {
        quotes::get(&h.pool, &quote_id)
            .await
            .expect("get")
            .is_some_and(|q| q.state == QuoteState::Expired)
    })
    .await;
    let row = quotes::get(&h.pool, &quote_id)
        .await
        .expect("get")
        .expect("row");
    assert_eq!(row.minted_sats, None);
    let booked: i64 = sqlx::query_scalar("select count(*) from ledger_entries where offer_id = $1")
        .bind(offer)
        .fetch_one(&h.pool)
        .await
        .expect("ledger");
    assert_eq!(booked, 0, "no deposit booked");
    let seen = body(h.get_offer(offer, Some(&maker)).await).await;
    assert_eq!(seen["status"], "CREATED", "{seen}");
    let held = h.worker_wallets.balance(&wallet).await.expect("balance");
    assert_eq!(held.unspent, 0, "the wallet got nothing");
    let scrape = h.admin.get("/metrics").send().await;
    let text = scrape.0.into_body().into_string().await.expect("scrape");
    let counted = text
        .lines()
        .find_map(|l| l.strip_prefix("openpleb_quotes_issued_elsewhere_total "))
        .and_then(|v| v.trim().parse::<f64>().ok());
    assert_eq!(counted, Some(1.0), "counted once");

    // The control: a deposit paid the ordinary way is minted by the same worker and credited.
    h.funded_offer(&maker, provider).await;

    let _ = stop.send(());
    let _ = worker.await;
    h.stop().await;
}
