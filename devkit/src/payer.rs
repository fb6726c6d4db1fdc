//! A payment switch for the dev mint: `POST /pay` with `{"bolt11": "lnbc…"}` marks the invoice paid
//! at once, as a payer's Lightning node would. With a long `DEVMINT_PAYMENT_DELAY_SECS` nothing
//! is paid by itself, so a client (the devclient's `chaos` run) decides when each invoice is
//! paid: on time, after its offer lapsed (a late payment), or never.
//!
//! Paying is idempotent: an invoice already paid through the switch is not paid again, so a
//! client may repeat a request whose answer it lost (the mint was stopped, the connection cut)
//! without paying twice.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::Context;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use cdk::Bolt11Invoice;
use cdk::Mint;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::mint::pay_invoice_at;

#[derive(Clone)]
struct Payer {
    mint: Arc<Mint>,
    /// Payment hashes paid through the switch.
    paid: Arc<Mutex<HashSet<String>>>,
}

/// Serves `POST /pay` for `mint` on `listen` until the process ends.
pub async fn serve(listen: SocketAddr, mint: Arc<Mint>) -> anyhow::Result<SocketAddr> {
    let payer = Payer {
        mint,
        paid: Arc::new(Mutex::new(HashSet::new())),
    };
    let router = Router::new().route("/pay", post(pay)).with_state(payer);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("bind payment switch on {listen}"))?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "payment switch stopped");
        }
    });
    Ok(addr)
}

async fn pay(State(payer): State<Payer>, Json(body): Json<Value>) -> (StatusCode, String) {
    let bolt11 = body["bolt11"].as_str().unwrap_or_default().trim();
    let invoice = match Bolt11Invoice::from_str(bolt11) {
        Ok(i) => i,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("bolt11: {e}")),
    };
    let Some(msat) = invoice.amount_milli_satoshis() else {
        return (StatusCode::BAD_REQUEST, "amountless invoice".to_owned());
    };
    let hash = invoice.payment_hash().to_string();
    // Held across the payment: a repeat waits for the first and then finds it paid.
    let mut paid = payer.paid.lock().await;
    if paid.contains(&hash) {
        return (StatusCode::OK, "already paid".to_owned());
    }
    match pay_invoice_at(&payer.mint, bolt11, msat / 1000).await {
        Ok(()) => {
            paid.insert(hash);
            (StatusCode::OK, "paid".to_owned())
        }
        Err(e) => (StatusCode::BAD_GATEWAY, format!("{e:#}")),
    }
}
