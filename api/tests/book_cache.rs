//! The anonymous book's cache: pages are served from it, and every move into or out of the
//! book clears it at once (not after `BOOK_CACHE_MS`, set to a minute here).

mod common;

use std::time::{Duration, Instant};

use common::{body, Client, Harness};
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

async fn anonymous_page(client: &Client) -> Value {
    let resp = client.get("/api/v1/offers?limit=100").send().await;
    resp.assert_status_is_ok();
    body(resp).await
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|o| o["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Polls the anonymous book until `check` holds; fails after 3 s (the cache keeps pages for a
/// minute, so only the change notification can make it hold that soon).
async fn book_soon(client: &Client, what: &str, check: impl Fn(&[String]) -> bool) {
    let start = Instant::now();
    loop {
        let page = anonymous_page(client).await;
        if check(&ids(&page)) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{what}: still not seen after 3 s: {page}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// 1. an empty anonymous page is cached; a funded offer appears in it at once;
/// 2. a change the book is not told about (a direct update) stays unseen by anonymous readers
///    (they are served the cached page) while a session's page, never cached, shows it;
/// 3. a claim leaves the offer in the book; the bond that wins it takes it out at once.
#[sqlx::test(migrations = false)]
async fn book_changes_clear_the_cache(opts: PgPoolOptions, conn: PgConnectOptions) {
    let h = Harness::start_configured(opts, conn, |c| {
        c.api.book_cache = Duration::from_secs(60);
    })
    .await;
    let provider = h.provider().await;
    let maker = h.session().await;
    let taker = h.session().await;
    assert!(ids(&anonymous_page(&h.public).await).is_empty());

    let (id, _) = h.funded_offer(&maker, provider).await;
    let id_text = id.to_string();
    book_soon(&h.public, "the funded offer", |ids| ids.contains(&id_text)).await;

    // Not announced: served from the cache to anonymous readers.
    let before = anonymous_page(&h.public).await;
    sqlx::query("update offers set description = 'changed quietly' where id = $1")
        .bind(id)
        .execute(&h.pool)
        .await
        .expect("update");
    let cached = anonymous_page(&h.public).await;
    assert_eq!(cached, before, "the cached page is served");
    let resp = h
        .public
        .get("/api/v1/offers?limit=100")
        .header("Authorization", taker.bearer())
        .send()
        .await;
    let with_session = body(resp).await;
    assert_eq!(with_session["items"][0]["description"], "changed quietly");

    let resp = h
        .public
        .post(format!("/api/v1/offers/{id}/claim"))
        .header("Authorization", taker.bearer())
        .body_json(&json!({"takerPayoutPubkey": common::payout_key().1}))
        .send()
        .await;
    resp.assert_status_is_ok();
    let bond = body(resp).await["bond"].clone();
    assert!(ids(&anonymous_page(&h.public).await).contains(&id_text));
    h.pay(
        bond["invoice"].as_str().expect("invoice"),
        bond["amountSats"].as_u64().expect("sats"),
    )
    .await;
    h.wait_status(id, &taker, "TAKER_BOND_PAID").await;
    book_soon(&h.public, "the taken offer gone", |ids| {
        !ids.contains(&id_text)
    })
    .await;
    h.stop().await;
}
