//! The book and other traders' money against a cheap attacker: a session's claims are bounded
//! (they cost mint invoices), though they hide nothing; it cannot fill the book with its own
//! offers; and a taker never sees what belongs to an earlier claimant of the same offer. Real
//! mint, real worker; the mint pays invoices only when a test says so.

mod common;

use std::time::Duration;

use common::{Harness, Reply, Session, Trade, Transport};
use openpleb_common::config::Config;
use openpleb_devkit::scenario::trade::{try_claim, wait_claim};
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;

/// Claims lapse after two seconds (every other timer is long); one unpaid claim per session.
fn short_claims(c: &mut Config) {
    c.limits.claim_max_unpaid = 1;
    c.timers.invoice_created = Duration::from_secs(2);
}

/// Creates an offer as `maker`: the answer to `POST /offers`.
async fn create(h: &Harness, maker: &Session, provider: Uuid) -> anyhow::Result<Reply> {
    let plan = Trade::new(h).maker(maker).provider(provider).fiat(1_000);
    let (reply, _, _) = plan.field("paymentDetails", json!("IBAN")).send().await?;
    Ok(reply)
}

/// An offer of `maker`'s, funded and in the book.
async fn listed(h: &Harness, maker: &Session, provider: Uuid) -> anyhow::Result<Uuid> {
    let plan = Trade::new(h).maker(maker).provider(provider).fiat(1_000);
    Ok(plan
        .field("paymentDetails", json!("IBAN"))
        .funded()
        .await?
        .id)
}

/// Claims `id` as `taker` without paying the bond: the answer.
async fn claim(h: &Harness, id: Uuid, taker: &Session) -> anyhow::Result<Reply> {
    Ok(try_claim(h, id, taker).await?.0)
}

/// Claim griefing with one unpaid claim per session (two claims
/// racing count as two), no re-claim of an offer whose claim the session let lapse within the
/// cooldown (other sessions may claim it), and at most ten open offers per maker session.
#[sqlx::test(migrations = false)]
async fn one_session_cannot_keep_the_book_hidden(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) -> anyhow::Result<()> {
    let h = Harness::start_configured(opts, conn, short_claims).await;
    let (provider, [maker, griefer, other]) = h.cast().await;

    // Ten open offers (two listed, eight unfunded) and no more.
    let a = listed(&h, &maker, provider).await?;
    let b = listed(&h, &maker, provider).await?;
    for _ in 0..8 {
        create(&h, &maker, provider).await?.expect(201)?;
    }
    let eleventh = create(&h, &maker, provider).await?;
    eleventh.refused(409, "too_many_open_offers")?;

    // Two claims at once by one session: one is made, the other is refused and writes
    // nothing; both offers stay in the book (a claim hides nothing).
    let (ra, rb) = futures::join!(claim(&h, a, &griefer), claim(&h, b, &griefer));
    let (ra, rb) = (ra?, rb?);
    let (won, lost, refused) = match (ra.status, rb.status) {
        (200, _) => (a, b, rb),
        (_, 200) => (b, a, ra),
        _ => panic!("neither claim was made: {ra:?} {rb:?}"),
    };
    refused.refused(409, "too_many_unpaid_claims")?;
    for id in [won, lost] {
        let offer = h
            .get(&format!("/offers/{id}"), common::Auth::Anonymous)
            .await?
            .body;
        assert_eq!(offer["status"], "INVOICE_PAID");
    }

    // The claim lapses: the session that let it lapse may not claim that offer for a while.
    wait_claim(&h, won, &griefer, "LAPSED").await?;
    let resp = claim(&h, won, &griefer).await?;
    let retry: u64 = resp
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=600).contains(&retry), "{retry}");
    resp.refused(429, "claim_cooldown")?;
    // Anyone else may claim it; the lapsed claim is not held against the griefer's others.
    claim(&h, won, &other).await?.expect(200)?;
    claim(&h, lost, &griefer).await?.expect(200)?;

    // That claim lapses too; once the cooldown has passed the griefer may claim it again.
    wait_claim(&h, lost, &griefer, "LAPSED").await?;
    claim(&h, lost, &griefer)
        .await?
        .refused(429, "claim_cooldown")?;
    sqlx::query("update claim_lapses set lapsed_at = now() - interval '11 minutes'")
        .execute(&h.pool)
        .await?;
    claim(&h, lost, &griefer).await?.expect(200)?;
    h.stop().await;
    Ok(())
}

/// The payouts an offer's party sees.
async fn payouts(h: &Harness, id: Uuid, who: &Session) -> anyhow::Result<Value> {
    h.get(&format!("/offers/{id}/payouts"), who)
        .await?
        .expect(200)
}

/// Pays the bond of a claim's answer.
async fn pay_bond(h: &Harness, claimed: Value) -> anyhow::Result<()> {
    let (invoice, sats) = openpleb_devkit::scenario::trade::invoice(&claimed["bond"])?;
    h.pay(&invoice, sats).await;
    Ok(())
}

/// Taker A lets its claim lapse and pays the bond late; the bond is refunded to A.
/// Taker B then claims the same offer: B's payouts do not include A's refund (B could not
/// redeem it, and it tells B about another trader), while A still sees its own.
#[sqlx::test(migrations = false)]
async fn a_previous_takers_refund_is_not_shown_to_the_next(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) -> anyhow::Result<()> {
    let h = Harness::start_configured(opts, conn, short_claims).await;
    let (provider, [maker, a, b]) = h.cast().await;
    let id = listed(&h, &maker, provider).await?;

    let claimed = claim(&h, id, &a).await?.expect(200)?;
    wait_claim(&h, id, &a, "LAPSED").await?;
    pay_bond(&h, claimed).await?;
    let refund = h.released_payouts(id, &a).await;
    assert_eq!(refund.len(), 1, "{refund:?}");
    assert_eq!(refund[0]["purpose"], "late_refund");

    // B claims and pays its bond: B is the taker now, and sees nothing of A's.
    pay_bond(&h, claim(&h, id, &b).await?.expect(200)?).await?;
    h.wait_status(id, &b, "TAKER_BOND_PAID").await;
    assert_eq!(payouts(&h, id, &b).await?, json!([]), "nothing of A's");
    assert_eq!(
        payouts(&h, id, &a).await?,
        json!(refund),
        "A still sees its own"
    );
    h.stop().await;
    Ok(())
}
