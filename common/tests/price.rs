//! The HTTP median price source against real HTTP endpoints on loopback.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use openpleb_common::price::{HttpMedianPrice, PriceEndpoint, PriceError, PriceSource};
use serde_json::json;

/// Serves `/price/{currency}` with `body` while `up` is true (500 otherwise).
async fn endpoint(body: serde_json::Value, up: Arc<AtomicBool>) -> String {
    let app = Router::new().route(
        "/price/{currency}",
        get(move || {
            let body = body.clone();
            let up = up.clone();
            async move {
                if up.load(Ordering::SeqCst) {
                    Ok(Json(body))
                } else {
                    Err(axum::http::StatusCode::INTERNAL_SERVER_ERROR)
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/price/{{currency}}")
}

#[tokio::test]
async fn median_of_a_majority_cached_and_never_stale() {
    let up = Arc::new(AtomicBool::new(true));
    let a = endpoint(json!({"data": {"amount": "60000.10"}}), up.clone()).await;
    let b = endpoint(json!({"price": 60100}), up.clone()).await;
    // A wrong (or hostile) source cannot move the median.
    let c = endpoint(json!({"price": 1}), Arc::new(AtomicBool::new(true))).await;
    let source = HttpMedianPrice::new(
        vec![
            PriceEndpoint {
                url: a,
                pointer: "/data/amount".to_owned(),
            },
            PriceEndpoint {
                url: b,
                pointer: "/price".to_owned(),
            },
            PriceEndpoint {
                url: c,
                pointer: "/price".to_owned(),
            },
        ],
        Duration::from_millis(200),
        Duration::from_millis(600),
    );
    let p = source.price("EUR").await.expect("price");
    assert_eq!(p.minor_per_btc, 6_000_010);

    // Two of three sources down: no majority, so the cached price serves until max age.
    up.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        source.price("EUR").await.expect("cached").minor_per_btc,
        6_000_010
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        source.price("EUR").await,
        Err(PriceError::Stale("EUR".to_owned()))
    );

    // Back up: fresh again.
    up.store(true, Ordering::SeqCst);
    assert_eq!(
        source.price("EUR").await.expect("fresh").minor_per_btc,
        6_000_010
    );
}
