//! One chaos trade, played through the API by its maker, its taker and (for a split) an admin,
//! while processes are killed under it.
//!
//! Every move tolerates a lost answer: after a transport failure or a refusal the offer's status
//! says whether the move was applied, and only then is it repeated. Where chaos bends the plan
//! (an answer with an invoice was lost, a timer ran out while the mint was stopped) the trade
//! notes it and winds down: the maker cancels what is in the book, timers end the rest.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use openpleb_common::domain::role::Role;
use serde_json::{json, Value};

use super::scenario::Scenario;
use crate::client::{
    backoff, call_retrying, new_party, request, reveal, upload_receipt, CallError, Endpoints, Party,
};
use crate::Trader;

/// What every trade shares.
#[derive(Debug)]
pub struct Shared {
    /// The stack.
    pub env: Endpoints,
    /// The dev mint's payment switch (`POST /pay`).
    pub pay_url: String,
    /// The fiat provider every offer names.
    pub provider: String,
    /// Offer lifetime of `LapseBook` trades, seconds.
    pub short_lifetime: u64,
    /// When trades stop waiting.
    pub deadline: Instant,
}

/// How one trade went.
#[derive(Debug)]
pub struct TradeReport {
    /// Its plan.
    pub scenario: Scenario,
    /// The offer, once created.
    pub offer: Option<String>,
    /// Its last status as the maker saw it.
    pub status: String,
    /// Every key a payout of the offer may be locked to (payout keys and registered keys).
    pub keys: Vec<Trader>,
    /// Mint quotes this trade paid (each must end minted: applied or refunded).
    pub paid_quotes: Vec<String>,
    /// Where chaos bent the plan.
    pub bent: Vec<String>,
    /// Why the trade could not go on, if it could not.
    pub error: Option<String>,
}

const TERMINAL: [&str; 4] = ["COMPLETED", "EXPIRED", "RESOLVED", "CANCELLED"];

/// Whether `status` is final.
pub fn is_terminal(status: &str) -> bool {
    TERMINAL.contains(&status)
}

/// Plays trade `index` to its end.
pub async fn drive(shared: &Shared, index: usize) -> TradeReport {
    let scenario = Scenario::for_trade(index);
    let mut report = TradeReport {
        scenario,
        offer: None,
        status: String::new(),
        keys: Vec::new(),
        paid_quotes: Vec::new(),
        bent: Vec::new(),
        error: None,
    };
    if let Err(e) = play(shared, scenario, &mut report).await {
        report.error = Some(format!("{e:#}"));
    }
    report
}

async fn play(shared: &Shared, scenario: Scenario, r: &mut TradeReport) -> anyhow::Result<()> {
    let env = &shared.env;
    let maker = new_party(env, "maker", false).await?;
    let maker_key = Trader::new();
    r.keys.push(maker_key.clone());
    r.keys.push(maker.trader.clone());
    let lifetime = if scenario == Scenario::LapseBook {
        shared.short_lifetime
    } else {
        900
    };
    let (id, deposit) = create(shared, &maker, &maker_key, lifetime, r).await?;
    r.offer = Some(id.clone());

    if !scenario.funds() {
        match scenario {
            Scenario::CancelThenPay => {
                cancel(shared, &maker, &id).await?;
                pay(shared, &deposit, r).await?;
            }
            Scenario::LateDeposit => {
                let st = wait_status(shared, &maker, &id, is_terminal).await?;
                pay(shared, &deposit, r).await?;
                r.status = st;
            }
            _ => {}
        }
        return wind_down(shared, &maker, &id, r).await;
    }

    pay(shared, &deposit, r).await?;
    let st = wait_status(shared, &maker, &id, |s| s != "CREATED").await?;
    if st != "INVOICE_PAID" {
        r.bent.push(format!("deposit not applied in time: {st}"));
        return wind_down(shared, &maker, &id, r).await;
    }
    match scenario {
        Scenario::CancelFunded => {
            cancel(shared, &maker, &id).await?;
            return wind_down(shared, &maker, &id, r).await;
        }
        Scenario::LapseBook => {
            wait_status(shared, &maker, &id, is_terminal).await?;
            return wind_down(shared, &maker, &id, r).await;
        }
        _ => {}
    }

    let taker = new_party(env, "taker", false).await?;
    let taker_key = Trader::new();
    r.keys.push(taker_key.clone());
    r.keys.push(taker.trader.clone());
    let Some(bond) = claim(shared, &taker, &taker_key, &id, r).await? else {
        return wind_down(shared, &maker, &id, r).await;
    };
    if !scenario.bonds() {
        // The claim lapses unpaid; the bond paid after that is refunded.
        wait_claim(shared, &taker, &id).await?;
        pay(shared, &bond, r).await?;
        return wind_down(shared, &maker, &id, r).await;
    }
    pay(shared, &bond, r).await?;
    let claim = wait_claim(shared, &taker, &id).await?;
    let st = status(shared, &maker, &id).await?;
    if claim != "WON" || st != "TAKER_BOND_PAID" {
        r.bent.push(format!("bond not applied in time: {st}"));
        return wind_down(shared, &maker, &id, r).await;
    }
    if !scenario.receipts() {
        return wind_down(shared, &maker, &id, r).await;
    }
    if !receipt(shared, &taker, &id, r).await? {
        return wind_down(shared, &maker, &id, r).await;
    }
    finish(shared, scenario, &maker, &taker, &id, r).await?;
    wind_down(shared, &maker, &id, r).await
}

/// The moves after the receipt.
async fn finish(
    shared: &Shared,
    scenario: Scenario,
    maker: &Party,
    taker: &Party,
    id: &str,
    r: &mut TradeReport,
) -> anyhow::Result<()> {
    let offer_url = format!("{}/offers/{id}", shared.env.api);
    if scenario == Scenario::Complete {
        act(
            shared,
            maker,
            id,
            &format!("{offer_url}/complete"),
            None,
            &["COMPLETED"],
        )
        .await?;
        return Ok(());
    }
    if !scenario.issues() {
        return Ok(());
    }
    let issue = json!({"reason": "not_received", "message": "nothing arrived",
                       "reveal": reveal(maker, id, Role::Maker)?});
    let after_issue = ["MARKED_WITH_ISSUE", "DISPUTED", "RESOLVED"];
    let url = format!("{offer_url}/issue");
    if let Err(e) = act(shared, maker, id, &url, Some(&issue), &after_issue).await {
        r.bent.push(format!("issue: {e:#}"));
        return Ok(());
    }
    let answer = format!("{offer_url}/issue/answer");
    match scenario {
        Scenario::IssueForfeit => {
            let forfeit = json!({"action": "FORFEIT"});
            if let Err(e) = act(shared, taker, id, &answer, Some(&forfeit), &["RESOLVED"]).await {
                r.bent.push(format!("forfeit: {e:#}"));
            }
        }
        Scenario::DisputeSplit => {
            let dispute = json!({"action": "DISPUTE", "message": "I paid; see the receipt",
                                 "reveal": reveal(taker, id, Role::Taker)?});
            let reached = ["DISPUTED", "RESOLVED"];
            if let Err(e) = act(shared, taker, id, &answer, Some(&dispute), &reached).await {
                r.bent.push(format!("dispute: {e:#}"));
                return Ok(());
            }
            let counter = json!({"action": "COUNTER", "message": "still nothing"});
            let url = format!("{offer_url}/dispute/answer");
            // A repeat after a lost answer is refused (already countered); either way the
            // dispute now waits for an admin (maker silence would count as a counter too).
            if let Err(e) = request("POST", &url, Some(&maker.bat), Some(&counter)).await {
                if !matches!(e, CallError::Status(409, _)) {
                    r.bent.push(format!("counter: {e}"));
                }
            }
            resolve_split(shared, maker, id).await?;
        }
        _ => {}
    }
    Ok(())
}

/// `POST /offers`, repeated after a lost answer (the lost offer, if it was made, lapses
/// unpaid). The offer id and its deposit invoice.
async fn create(
    shared: &Shared,
    maker: &Party,
    key: &Trader,
    lifetime: u64,
    r: &mut TradeReport,
) -> anyhow::Result<(String, Value)> {
    let body = json!({"fiatAmount": 1500, "currency": "EUR",
                      "fiatProviderId": shared.provider, "description": "chaos",
                      "paymentDetails": "IBAN DE89 3704 0044 0532 0130 00",
                      "makerPayoutPubkey": key.pubkey(), "lifetimeSecs": lifetime});
    let url = format!("{}/offers", shared.env.api);
    for n in 0..40 {
        match request("POST", &url, Some(&maker.bat), Some(&body)).await {
            Ok(v) => {
                let id = v["offer"]["id"].as_str().context("offer id")?.to_owned();
                return Ok((id, v["deposit"].clone()));
            }
            Err(e) if e.is_transient() => {
                if matches!(e, CallError::Transport(_)) {
                    r.bent.push("create: no answer, tried again".to_owned());
                }
                tokio::time::sleep(backoff(n)).await;
            }
            Err(e) => bail!("POST {url}: {e}"),
        }
    }
    bail!("POST {url}: no answer")
}

/// Claims `id` as `taker`; the bond invoice, or `None` when the claim's answer was lost (the
/// claim then lapses unpaid) or the claim was refused.
async fn claim(
    shared: &Shared,
    taker: &Party,
    key: &Trader,
    id: &str,
    r: &mut TradeReport,
) -> anyhow::Result<Option<Value>> {
    let url = format!("{}/offers/{id}/claim", shared.env.api);
    let body = json!({"takerPayoutPubkey": key.pubkey()});
    for n in 0..40 {
        match request("POST", &url, Some(&taker.bat), Some(&body)).await {
            Ok(v) => return Ok(Some(v["bond"].clone())),
            Err(e) => {
                // A claim made by a request whose answer was lost: its invoice is kept.
                let mine = request("GET", &url, Some(&taker.bat), None)
                    .await
                    .unwrap_or(Value::Null);
                if mine["status"] == "PENDING" && mine["bond"].is_object() {
                    return Ok(Some(mine["bond"].clone()));
                }
                if !e.is_transient() {
                    r.bent
                        .push(format!("claim refused: {e} (claim {})", mine["status"]));
                    return Ok(None);
                }
            }
        }
        tokio::time::sleep(backoff(n)).await;
    }
    bail!("POST {url}: no answer")
}

/// Uploads the receipt; false when the offer moved on without it.
async fn receipt(
    shared: &Shared,
    taker: &Party,
    id: &str,
    r: &mut TradeReport,
) -> anyhow::Result<bool> {
    for n in 0..40 {
        match upload_receipt(&shared.env, taker, id).await {
            Ok(()) => return Ok(true),
            Err(e) => {
                let st = status(shared, taker, id).await?;
                if st != "TAKER_BOND_PAID" {
                    if st != "RECEIPT_SUBMITTED" {
                        r.bent.push(format!("receipt: {e} ({st})"));
                    }
                    return Ok(st == "RECEIPT_SUBMITTED");
                }
                if !e.is_transient() {
                    bail!("receipt: {e}");
                }
            }
        }
        tokio::time::sleep(backoff(n)).await;
    }
    bail!("receipt: no answer")
}

/// An admin splits the pot, once the dispute waits for one.
async fn resolve_split(shared: &Shared, maker: &Party, id: &str) -> anyhow::Result<()> {
    let env = &shared.env;
    let url = format!("{}/admin/disputes/{id}/resolve", env.admin);
    let body = json!({"resolution": "SPLIT", "note": "chaos run"});
    while Instant::now() < shared.deadline {
        match request("POST", &url, Some(&env.admin_token), Some(&body)).await {
            Ok(_) => return Ok(()),
            Err(_) => {
                if is_terminal(&status(shared, maker, id).await?) {
                    return Ok(());
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    bail!("the dispute of {id} was never resolved")
}

/// POSTs a move as `who`; done on a 2xx, or when the offer's status, asked after a lost answer
/// or a refusal, is one of `reached` (the first attempt was applied, or someone else's move
/// got there). A refusal in any other status is an error.
async fn act(
    shared: &Shared,
    who: &Party,
    id: &str,
    url: &str,
    body: Option<&Value>,
    reached: &[&str],
) -> anyhow::Result<()> {
    for n in 0..40 {
        match request("POST", url, Some(&who.bat), body).await {
            Ok(_) => return Ok(()),
            Err(e) => {
                let st = status(shared, who, id).await?;
                if reached.contains(&st.as_str()) {
                    return Ok(());
                }
                if !e.is_transient() {
                    bail!("POST {url}: {e} (offer {st})");
                }
            }
        }
        tokio::time::sleep(backoff(n)).await;
    }
    bail!("POST {url}: no answer")
}

/// The maker cancels, as [`act`] repeats a move.
async fn cancel(shared: &Shared, maker: &Party, id: &str) -> anyhow::Result<()> {
    let url = format!("{}/offers/{id}/cancel", shared.env.api);
    act(shared, maker, id, &url, None, &["CANCELLED"]).await
}

/// Pays an invoice (`{"invoice", "quoteId", ...}`) at the dev mint's payment switch.
async fn pay(shared: &Shared, invoice: &Value, r: &mut TradeReport) -> anyhow::Result<()> {
    let bolt11 = invoice["invoice"].as_str().context("invoice")?;
    let quote = invoice["quoteId"].as_str().context("quote id")?;
    call_retrying(
        "POST",
        &shared.pay_url,
        None,
        Some(&json!({"bolt11": bolt11})),
    )
    .await
    .context("pay at the dev mint")?;
    r.paid_quotes.push(quote.to_owned());
    Ok(())
}

async fn offer(shared: &Shared, who: &Party, id: &str) -> anyhow::Result<Value> {
    let url = format!("{}/offers/{id}", shared.env.api);
    call_retrying("GET", &url, Some(&who.bat), None)
        .await
        .with_context(|| format!("GET {url}"))
}

async fn status(shared: &Shared, who: &Party, id: &str) -> anyhow::Result<String> {
    let v = offer(shared, who, id).await?;
    Ok(v["status"].as_str().unwrap_or_default().to_owned())
}

/// Polls `who`'s claim of `id` until it is no longer PENDING; its status.
async fn wait_claim(shared: &Shared, who: &Party, id: &str) -> anyhow::Result<String> {
    let url = format!("{}/offers/{id}/claim", shared.env.api);
    let what = format!("the claim of {id}");
    wait_until(shared, who, &url, &what, |s| s != "PENDING").await
}

/// Polls `id` as `who` until its status satisfies `done`.
async fn wait_status(
    shared: &Shared,
    who: &Party,
    id: &str,
    done: impl Fn(&str) -> bool,
) -> anyhow::Result<String> {
    let url = format!("{}/offers/{id}", shared.env.api);
    wait_until(shared, who, &url, &format!("offer {id}"), done).await
}

/// Polls `url` as `who` until the status it shows satisfies `done` (`what` names it in the
/// error when the run's deadline passes first).
async fn wait_until(
    shared: &Shared,
    who: &Party,
    url: &str,
    what: &str,
    done: impl Fn(&str) -> bool,
) -> anyhow::Result<String> {
    loop {
        let v = call_retrying("GET", url, Some(&who.bat), None)
            .await
            .with_context(|| format!("GET {url}"))?;
        let st = v["status"].as_str().unwrap_or_default().to_owned();
        if done(&st) {
            return Ok(st);
        }
        if Instant::now() > shared.deadline {
            bail!("{what} stuck in {st}");
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
}

/// Brings the offer to an end: the maker cancels what sits in the book, an admin splits a
/// dispute left waiting, timers end the rest.
async fn wind_down(
    shared: &Shared,
    maker: &Party,
    id: &str,
    r: &mut TradeReport,
) -> anyhow::Result<()> {
    let cancel = format!("{}/offers/{id}/cancel", shared.env.api);
    loop {
        let st = status(shared, maker, id).await?;
        r.status.clone_from(&st);
        match st.as_str() {
            s if is_terminal(s) => return Ok(()),
            "INVOICE_PAID" => {
                let _ = request("POST", &cancel, Some(&maker.bat), None).await;
            }
            "DISPUTED" => resolve_split(shared, maker, id).await?,
            _ => {}
        }
        if Instant::now() > shared.deadline {
            bail!("offer {id} stuck in {st}");
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
}
