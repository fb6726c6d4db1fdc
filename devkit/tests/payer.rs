//! The dev mint's payment switch (`payer`): an invoice is paid only when asked, and asking twice
//! (a client repeating a request whose answer it lost) pays it once.

use std::sync::Arc;

use cdk::amount::SplitTarget;
use cdk::nuts::{CurrencyUnit, MintQuoteState, PaymentMethod};
use cdk::wallet::WalletBuilder;
use cdk::Amount;
use openpleb_common::wallet::store::{SqlxSqliteConfig, WalletSqlxDatabase};
use openpleb_devkit::client::request;
use openpleb_devkit::{DevMint, DevMintOptions};
use serde_json::json;

#[tokio::test]
async fn an_invoice_is_paid_when_asked_and_once_however_often_asked() {
    let mint = DevMint::start_with(DevMintOptions {
        payment_delay_secs: 3600,
        ..DevMintOptions::default()
    })
    .await
    .expect("mint");
    let addr = openpleb_devkit::payer::serve(([127, 0, 0, 1], 0).into(), mint.mint.clone())
        .await
        .expect("switch");
    let db = Arc::new(
        WalletSqlxDatabase::new(SqlxSqliteConfig::memory())
            .await
            .expect("db"),
    );
    let wallet = WalletBuilder::new()
        .mint_url(mint.url.parse().expect("url"))
        .unit(CurrencyUnit::Sat)
        .localstore(db)
        .seed([3u8; 64])
        .without_rate_limiting()
        .build()
        .expect("wallet");
    let quote = wallet
        .mint_quote(PaymentMethod::BOLT11, Some(Amount::from(500)), None, None)
        .await
        .expect("quote");
    let unpaid = wallet
        .check_mint_quote_status(&quote.id)
        .await
        .expect("status");
    assert_eq!(
        unpaid.state,
        MintQuoteState::Unpaid,
        "nothing pays by itself"
    );

    let url = format!("http://{addr}/pay");
    let body = json!({"bolt11": quote.request});
    for _ in 0..3 {
        request("POST", &url, None, Some(&body)).await.expect("pay");
    }
    let paid = wallet
        .check_mint_quote_status(&quote.id)
        .await
        .expect("status");
    assert_eq!(paid.state, MintQuoteState::Paid);
    assert_eq!(
        u64::from(paid.amount_paid),
        500,
        "paid once, not three times"
    );
    let proofs = wallet
        .mint(&quote.id, SplitTarget::default(), None)
        .await
        .expect("mint");
    let sats: u64 = proofs.iter().map(|p| u64::from(p.amount)).sum();
    assert_eq!(sats, 500);

    let refused = request(
        "POST",
        &url,
        None,
        Some(&json!({"bolt11": "lnbc1nonsense"})),
    )
    .await;
    assert!(
        matches!(
            refused,
            Err(openpleb_devkit::client::CallError::Status(400, _))
        ),
        "{refused:?}"
    );
}
