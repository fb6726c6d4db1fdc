//! Reputation tokens over HTTP: a client blinds outputs with cdk's wallet-side functions,
//! earns signatures by completing trades, unblinds them and verifies their DLEQ proofs against
//! `GET /reputation/keys`, and stakes the tokens on a new offer and claim, which the book then
//! shows. Stakes come back or burn by the outcome; refusals write nothing; no reputation table
//! names a session, user or key.

mod common;

use cdk::nuts::{Id, Keys};
use common::dispute::reveal;
use common::reputation::active;
use common::{payout_key, Auth, Harness, Reply, Session, Transport};
use openpleb_common::domain::role::Role;
use openpleb_devkit::reputation::{stake_json, unblind, Blinded};
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;

async fn create(
    h: &Harness,
    maker: &Session,
    provider: Uuid,
    reputation: Value,
    min_taker_stake: u32,
) -> anyhow::Result<Reply> {
    let (_, key) = payout_key();
    let offer = json!({
        "fiatAmount": 1_000, "currency": "EUR", "fiatProviderId": provider,
        "paymentDetails": "IBAN DE00 1234", "makerPayoutPubkey": key,
        "minTakerStake": min_taker_stake, "reputation": reputation,
    });
    h.post("/offers", maker, offer).await
}

/// Creates an offer with `reputation` and waits until it is funded; its id.
async fn funded(
    h: &Harness,
    maker: &Session,
    provider: Uuid,
    reputation: Value,
) -> anyhow::Result<Uuid> {
    let created = create(h, maker, provider, reputation, 0)
        .await?
        .expect(201)?;
    let id = created["offer"]["id"].as_str().expect("id").parse()?;
    h.wait_status(id, maker, "INVOICE_PAID").await;
    Ok(id)
}

async fn claim(h: &Harness, taker: &Session, id: Uuid, reputation: Value) -> anyhow::Result<Reply> {
    let (_, key) = payout_key();
    let body = json!({"takerPayoutPubkey": key, "reputation": reputation});
    h.post(&format!("/offers/{id}/claim"), taker, body).await
}

async fn complete(h: &Harness, maker: &Session, taker: &Session, id: Uuid) -> anyhow::Result<()> {
    h.wait_status(id, taker, "TAKER_BOND_PAID").await;
    h.upload_receipt(id, taker).await.assert_status_is_ok();
    h.post_empty(&format!("/offers/{id}/complete"), maker)
        .await?
        .expect(200)?;
    Ok(())
}

async fn signatures(h: &Harness, who: &Session, id: Uuid) -> anyhow::Result<Value> {
    h.get(&format!("/offers/{id}/reputation"), who)
        .await?
        .expect(200)
}

/// The signatures of `outputs`, asked for by the outputs alone (no session).
async fn by_outputs(h: &Harness, outputs: &[&Blinded]) -> anyhow::Result<Value> {
    let hex: Vec<_> = outputs.iter().map(|o| o.b.to_hex()).collect();
    let body = json!({ "outputs": hex });
    h.post("/reputation/signatures", Auth::Anonymous, body)
        .await?
        .ok()
}

/// A stack paying every invoice by itself, a provider, the active keyset and two parties.
async fn setup(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) -> (Harness, Uuid, (Id, Keys), [Session; 2]) {
    let h = Harness::start(opts, conn).await;
    let keys = active(&h).await;
    let (provider, parties) = h.cast().await;
    (h, provider, keys, parties)
}

/// Earn on completion, unblind, verify, stake on a new offer and claim; the stake and a new
/// token come back on the next completion.
#[sqlx::test(migrations = false)]
async fn earned_tokens_unblind_verify_and_stake(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) -> anyhow::Result<()> {
    let (h, provider, (keyset, keys), [maker, taker]) = setup(opts, conn).await;

    // Trade 1: both send one output to earn.
    let maker_out = Blinded::new(keyset)?;
    let taker_out = Blinded::new(keyset)?;
    let id = funded(&h, &maker, provider, json!({"outputs": [maker_out.json()]})).await?;
    let earn = json!({"outputs": [taker_out.json()]});
    claim(&h, &taker, id, earn).await?.expect(200)?;
    // Nothing is signed before the trade ends.
    assert_eq!(signatures(&h, &maker, id).await?, json!([]));
    complete(&h, &maker, &taker, id).await?;

    let maker_signed = signatures(&h, &maker, id).await?;
    let maker_token = unblind(&maker_signed, &maker_out, &keys)?.expect("the maker earned");
    let taker_signed = signatures(&h, &taker, id).await?;
    let taker_token = unblind(&taker_signed, &taker_out, &keys)?.expect("the taker earned");
    // Each sees only its own signature.
    assert!(unblind(&maker_signed, &taker_out, &keys)?.is_none());

    // Trade 2: the maker stakes its token and asks takers for one.
    let maker_back = Blinded::new(keyset)?;
    let maker_earn = Blinded::new(keyset)?;
    let stake = json!({
        "outputs": [maker_earn.json()],
        "stake": [stake_json(&maker_token)],
        "returnOutputs": [maker_back.json()],
    });
    let created = create(&h, &maker, provider, stake, 1).await?.expect(201)?;
    let id2: Uuid = created["offer"]["id"].as_str().expect("id").parse()?;
    let v = h.wait_status(id2, &maker, "INVOICE_PAID").await;
    assert_eq!(v["makerStake"], 1, "{v}");
    assert_eq!(v["minTakerStake"], 1, "{v}");
    // The book shows the stake and filters by it.
    let book = h
        .get("/offers?minMakerStake=1", Auth::Anonymous)
        .await?
        .body;
    let listed: Vec<_> = book["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|o| o["id"].clone())
        .collect();
    assert_eq!(listed, vec![json!(id2)], "{book}");
    let book = h
        .get("/offers?minMakerStake=2", Auth::Anonymous)
        .await?
        .body;
    assert_eq!(book["items"], json!([]));
    // The same token cannot be staked twice; nothing is written.
    let offers_before = h.count("select count(*) from offers").await;
    let again = json!({
        "stake": [stake_json(&maker_token)],
        "returnOutputs": [Blinded::new(keyset)?.json()],
    });
    let resp = create(&h, &maker, provider, again, 0).await?;
    resp.refused(409, "token_already_staked")?;
    assert_eq!(offers_before, h.count("select count(*) from offers").await);

    // A claim without the stake the maker asks for is refused; with it, it wins.
    let resp = claim(&h, &taker, id2, json!({})).await?;
    resp.refused(400, "stake_too_small")?;
    let taker_back = Blinded::new(keyset)?;
    let stake = json!({"stake": [stake_json(&taker_token)], "returnOutputs": [taker_back.json()]});
    let claimed = claim(&h, &taker, id2, stake).await?.expect(200)?;
    assert_eq!(claimed["claim"]["stake"], 1);
    complete(&h, &maker, &taker, id2).await?;

    // Completion: the maker's stake comes back and it earns one more; the taker its stake.
    let signed = signatures(&h, &maker, id2).await?;
    for out in [&maker_back, &maker_earn] {
        let token = unblind(&signed, out, &keys)?.expect("signed");
        assert_eq!(token.amount, cdk::Amount::from(1));
    }
    let signed = signatures(&h, &taker, id2).await?;
    assert!(unblind(&signed, &taker_back, &keys)?.is_some());
    // And without a session, by the outputs themselves.
    let signed = by_outputs(&h, &[&taker_back, &maker_back]).await?;
    assert_eq!(signed.as_array().map(Vec::len), Some(2), "{signed}");
    h.stop().await;
    Ok(())
}

/// Refusals, nothing written: a forged token, an unknown keyset, too large a stake, outputs
/// of the wrong amount, a missing return output.
#[sqlx::test(migrations = false)]
async fn bad_tokens_and_outputs_are_refused(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) -> anyhow::Result<()> {
    let (h, provider, (keyset, _), [maker, _]) = setup(opts, conn).await;
    let out = || Blinded::new(keyset).expect("blind");
    let fake_token = |id: &str| {
        let b = out();
        json!({"amount": 1, "id": id, "secret": "00".repeat(32), "C": b.b.to_hex()})
    };
    let keyset_id = keyset.to_string();
    let cases = [
        (
            json!({"stake": [fake_token(&keyset_id)], "returnOutputs": [out().json()]}),
            "invalid_reputation_token",
        ),
        (
            json!({"stake": [fake_token("00ffffffffffffff")], "returnOutputs": [out().json()]}),
            "unknown_keyset",
        ),
        (
            json!({"stake": (0..6).map(|_| fake_token(&keyset_id)).collect::<Vec<_>>(),
                   "returnOutputs": (0..6).map(|_| out().json()).collect::<Vec<_>>()}),
            "stake_too_large",
        ),
        (
            json!({"stake": [fake_token(&keyset_id)], "returnOutputs": []}),
            "return_outputs_mismatch",
        ),
        (
            json!({"outputs": [{"amount": 1, "id": "00ffffffffffffff", "B_": out().b.to_hex()}]}),
            "unknown_keyset",
        ),
        (
            json!({"outputs": [out().json(), out().json()]}),
            "too_many_outputs",
        ),
    ];
    for (reputation, code) in cases {
        let resp = create(&h, &maker, provider, reputation, 0).await?;
        resp.refused(400, code)?;
    }
    // An output of amount 2 breaks the schema.
    let two = json!({"outputs": [{"amount": 2, "id": keyset_id, "B_": out().b.to_hex()}]});
    create(&h, &maker, provider, two, 0).await?.expect(400)?;
    let written = h
        .count(
            "select (select count(*) from offers) + (select count(*) from reputation_outputs)
              + (select count(*) from reputation_spent)",
        )
        .await;
    assert_eq!(written, 0);
    h.stop().await;
    Ok(())
}

/// Burning: a maker that loses a dispute loses its stake (its return output is never
/// signed), while the winning taker earns. A maker that cancels gets its stake back.
#[sqlx::test(migrations = false)]
async fn a_lost_dispute_burns_the_stake_and_a_cancel_returns_it(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) -> anyhow::Result<()> {
    let (h, provider, (keyset, keys), [maker, taker]) = setup(opts, conn).await;

    // Two tokens for the maker, earned by two completed trades (one output per trade).
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let out = Blinded::new(keyset)?;
        let id = funded(&h, &maker, provider, json!({"outputs": [out.json()]})).await?;
        claim(&h, &taker, id, json!({})).await?.expect(200)?;
        complete(&h, &maker, &taker, id).await?;
        let signed = signatures(&h, &maker, id).await?;
        tokens.push(unblind(&signed, &out, &keys)?.expect("earned"));
    }

    // A cancelled offer returns its stake.
    let back = Blinded::new(keyset)?;
    let staked = json!({"stake": [stake_json(&tokens[0])], "returnOutputs": [back.json()]});
    let id = funded(&h, &maker, provider, staked).await?;
    h.post_empty(&format!("/offers/{id}/cancel"), &maker)
        .await?
        .expect(200)?;
    let signed = signatures(&h, &maker, id).await?;
    assert!(unblind(&signed, &back, &keys)?.is_some(), "returned");

    // A dispute the maker forfeits burns its stake; the taker, who disputed, earns.
    let burned = Blinded::new(keyset)?;
    let taker_earn = Blinded::new(keyset)?;
    let staked = json!({"stake": [stake_json(&tokens[1])], "returnOutputs": [burned.json()]});
    let id = funded(&h, &maker, provider, staked).await?;
    let earn = json!({"outputs": [taker_earn.json()]});
    claim(&h, &taker, id, earn).await?.expect(200)?;
    h.wait_status(id, &taker, "TAKER_BOND_PAID").await;
    h.upload_receipt(id, &taker).await.assert_status_is_ok();
    let issue =
        json!({"reason": "other", "message": "hm", "reveal": reveal(&maker, id, Role::Maker)});
    let dispute =
        json!({"action": "DISPUTE", "message": "paid", "reveal": reveal(&taker, id, Role::Taker)});
    let steps = [
        (&maker, "issue", issue),
        (&taker, "issue/answer", dispute),
        (&maker, "dispute/answer", json!({"action": "FORFEIT"})),
    ];
    for (who, step, body) in steps {
        let path = format!("/offers/{id}/{step}");
        h.post(&path, who, body).await?.expect(200)?;
    }
    h.wait_status(id, &maker, "RESOLVED").await;
    let lost = signatures(&h, &maker, id).await?;
    assert_eq!(lost, json!([]), "the loser's stake is burned");
    let signed = signatures(&h, &taker, id).await?;
    assert!(
        unblind(&signed, &taker_earn, &keys)?.is_some(),
        "the winner earns"
    );
    let void: i64 = sqlx::query_scalar(
        "select count(*) from reputation_outputs where offer_id = $1 and state = 'void'",
    )
    .bind(id)
    .fetch_one(&h.pool)
    .await?;
    assert_eq!(void, 1);
    h.stop().await;
    Ok(())
}

/// The reputation tables name no session, user or key, and the spent-token table names no
/// offer: staking, issuing and returning cannot be joined to who anyone is.
#[sqlx::test(migrator = "openpleb_common::db::MIGRATOR")]
async fn reputation_tables_name_nobody(pool: sqlx::PgPool) {
    let columns: Vec<(String, String)> = sqlx::query_as(
        "select table_name::text, column_name::text from information_schema.columns
          where table_schema = 'public' and table_name like 'reputation%'",
    )
    .fetch_all(&pool)
    .await
    .expect("columns");
    assert!(columns.len() >= 12, "{columns:?}");
    for (table, column) in &columns {
        for word in ["session", "user", "pubkey", "key"] {
            assert!(
                !column.contains(word) || column == "keyset_id",
                "{table}.{column} names a {word}"
            );
        }
        if table == "reputation_spent" {
            assert!(!column.contains("offer"), "{table}.{column}");
        }
    }
}

/// A claim that lapses (its bond never paid) gives the taker's stake back, fetchable by the
/// outputs alone since the taker is no longer a party.
#[sqlx::test(migrations = false)]
async fn a_lapsed_claim_returns_the_stake(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) -> anyhow::Result<()> {
    let h = Harness::start_manual(opts, conn).await;
    let (keyset, keys) = active(&h).await;
    let (provider, [maker, taker]) = h.cast().await;

    // Earn a token: a trade completed with one output (payments made by hand).
    let (id, _) = h.funded_offer(&maker, provider).await;
    let earn = Blinded::new(keyset)?;
    let v = claim(&h, &taker, id, json!({"outputs": [earn.json()]}))
        .await?
        .body;
    let (invoice, sats) = openpleb_devkit::scenario::trade::invoice(&v["bond"])?;
    h.pay(&invoice, sats).await;
    complete(&h, &maker, &taker, id).await?;
    let signed = signatures(&h, &taker, id).await?;
    let token = unblind(&signed, &earn, &keys)?.expect("earned");

    // Stake it on a claim whose bond is never paid.
    let (id2, _) = h.funded_offer(&maker, provider).await;
    let back = Blinded::new(keyset)?;
    let staked = json!({"stake": [stake_json(&token)], "returnOutputs": [back.json()]});
    claim(&h, &taker, id2, staked).await?.expect(200)?;
    // The claim's deadline passes (the backstop lapses it within seconds).
    sqlx::query("update claims set expires_at = now() - interval '1 second' where offer_id = $1")
        .bind(id2)
        .execute(&h.pool)
        .await?;
    let path = format!("/offers/{id2}/claim");
    let mut lapsed = Value::Null;
    for _ in 0..80 {
        lapsed = h.get(&path, &taker).await?.body;
        if lapsed["status"] == "LAPSED" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_eq!(lapsed["status"], "LAPSED", "{lapsed}");
    let signed = by_outputs(&h, &[&back]).await?;
    let returned = unblind(&signed, &back, &keys)?;
    assert!(returned.is_some(), "the stake came back: {signed}");
    h.stop().await;
    Ok(())
}
