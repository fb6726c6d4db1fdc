//! Disputes over HTTP against the real mint and PostgreSQL: every path from an issue to its
//! end pays each party exactly its table amount with the right key (the registered key it
//! revealed, where it revealed one) and leaves the audit balanced; refusals write nothing;
//! racing moves have one winner; the parties, other sessions, anonymous callers and admins see
//! what they may.

mod common;

use std::time::Duration;

use common::dispute::{
    maker_answers, mark_issue, now_ms, post, registered_key, resolve, reveal, taker_answers,
    to_receipt, Amounts, Trade,
};
use common::{body, expect_error, Harness, Session, ADMIN, PNG};
use openpleb_common::domain::dispute::{reveal_digest, stats_digest};
use openpleb_common::domain::offer::OfferStatus;
use openpleb_common::domain::role::Role;
use openpleb_common::trade::lapse::lapse;
use poem::http::StatusCode;
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// What each side must redeem for `outcome`, per DESIGN.md section 4.
fn table(outcome: &str, a: &Amounts) -> (u64, u64) {
    match outcome {
        "MAKER_WINS" => (a.deposit() + a.tb, 0),
        "TAKER_WINS" => (0, a.s + a.tf + a.tb + a.mb),
        "RETURN" => (a.deposit(), a.tb),
        "SPLIT" => {
            let pot = a.deposit() + a.tb - a.pf;
            (pot / 2, pot - pot / 2)
        }
        other => panic!("no table row {other}"),
    }
}

/// Waits for RESOLVED with `outcome`, then checks both sides redeem exactly their table amount
/// with the key the money must be locked to: the revealed registered key where the side
/// revealed one (`*_revealed`).
async fn settled(h: &Harness, t: &Trade, outcome: &str, taker_revealed: bool) {
    let v = h.wait_status(t.id, &t.maker, "RESOLVED").await;
    assert_eq!(v["outcome"], outcome, "{v}");
    let (maker_owed, taker_owed) = table(outcome, &t.amounts);
    let maker_key = registered_key(&t.maker);
    if maker_owed > 0 {
        let paid = h.released_payouts(t.id, &t.maker).await;
        assert_eq!(
            h.redeem(&paid, &maker_key).await,
            maker_owed,
            "maker, {outcome}"
        );
    }
    if taker_owed > 0 {
        assert!(taker_revealed, "the taker is owed only after it disputed");
        let paid = h.released_payouts(t.id, &t.taker).await;
        let taker_key = registered_key(&t.taker);
        assert_eq!(
            h.redeem(&paid, &taker_key).await,
            taker_owed,
            "taker, {outcome}"
        );
    }
}

async fn balanced(h: &Harness) {
    for _ in 0..80 {
        let audit = h.audit().await;
        if audit["balanced"] == true {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("audit never balanced: {}", h.audit().await);
}

/// The paths that end by a party's answer or an admin's decision, each once, and the four
/// resolutions; both sides redeem their table amounts with their revealed keys.
#[sqlx::test(migrations = false)]
async fn every_answer_and_resolution_pays_by_the_table(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let h = Harness::start(opts, conn).await;
    let provider = h.provider().await;

    // Issue → the taker forfeits: MAKER_WINS, the taker revealed nothing.
    let t = to_receipt(&h, provider).await;
    mark_issue(&h, &t).await.assert_status_is_ok();
    assert_eq!(
        h.wait_status(t.id, &t.taker, "MARKED_WITH_ISSUE").await["status"],
        "MARKED_WITH_ISSUE"
    );
    taker_answers(&h, &t, "FORFEIT").await.assert_status_is_ok();
    settled(&h, &t, "MAKER_WINS", false).await;

    // Issue → dispute → the maker forfeits: TAKER_WINS.
    let t = to_receipt(&h, provider).await;
    mark_issue(&h, &t).await.assert_status_is_ok();
    taker_answers(&h, &t, "DISPUTE").await.assert_status_is_ok();
    maker_answers(&h, &t, "FORFEIT").await.assert_status_is_ok();
    settled(&h, &t, "TAKER_WINS", true).await;

    // Issue → dispute → counter → an admin, once per resolution.
    let mut ids = Vec::new();
    for outcome in ["MAKER_WINS", "TAKER_WINS", "RETURN", "SPLIT"] {
        let t = to_receipt(&h, provider).await;
        mark_issue(&h, &t).await.assert_status_is_ok();
        taker_answers(&h, &t, "DISPUTE").await.assert_status_is_ok();
        maker_answers(&h, &t, "COUNTER").await.assert_status_is_ok();
        let d = body(
            h.public
                .get(format!("/api/v1/offers/{}/dispute", t.id))
                .header("Authorization", t.taker.bearer())
                .send()
                .await,
        )
        .await;
        assert_eq!(d["stage"], "waiting_admin", "{d}");
        assert_eq!(d["messages"].as_array().map(Vec::len), Some(3), "{d}");
        let alerts = h.alerts().await;
        assert_eq!(alerts["disputesWaitingForAdmin"], 1, "{alerts}");
        resolve(&h, t.id, ADMIN, outcome)
            .await
            .assert_status_is_ok();
        settled(&h, &t, outcome, true).await;
        ids.push((t.id, t.maker.trader.pubkey()));
    }

    // The solver's file: both revealed keys with their statistics, the timeline, messages.
    let (id, maker_key) = &ids[0];
    let file = body(
        h.admin
            .get(format!("/api/v1/admin/disputes/{id}"))
            .header("Authorization", ADMIN)
            .send()
            .await,
    )
    .await;
    assert_eq!(file["maker"]["pubkey"], maker_key.as_str(), "{file}");
    assert_eq!(file["maker"]["stats"]["issuesRaised"], 1, "{file}");
    assert_eq!(file["maker"]["stats"]["wonAsMaker"], 1, "{file}");
    assert_eq!(file["taker"]["stats"]["disputesOpened"], 1, "{file}");
    assert_eq!(file["taker"]["stats"]["lostAsTaker"], 1, "{file}");
    assert_eq!(file["dispute"]["resolution"], "MAKER_WINS");
    assert_eq!(file["dispute"]["resolvedBy"], "admin");
    let timeline: Vec<_> = file["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .map(|e| e["status"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        timeline.ends_with(&[
            "RECEIPT_SUBMITTED".into(),
            "MARKED_WITH_ISSUE".into(),
            "DISPUTED".into(),
            "DISPUTED".into(),
            "RESOLVED".into()
        ]),
        "{timeline:?}"
    );
    // The resolutions are in the admin record, under the admin's name.
    let actions = body(
        h.admin
            .get("/api/v1/admin/actions")
            .header("Authorization", ADMIN)
            .send()
            .await,
    )
    .await;
    let resolutions = actions
        .as_array()
        .expect("actions")
        .iter()
        .filter(|a| a["action"] == "resolve_dispute" && a["admin"] == "admin")
        .count();
    assert_eq!(resolutions, 4, "{actions}");
    // The queue lists resolved disputes oldest first.
    let page = body(
        h.admin
            .get("/api/v1/admin/disputes?stage=resolved")
            .header("Authorization", ADMIN)
            .send()
            .await,
    )
    .await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(6), "{page}");
    balanced(&h).await;
    h.stop().await;
}

/// Silence: taker silence on an issue is a forfeit; maker silence on a dispute is a counter,
/// after which an admin decides. A dispute waiting for an admin has no timer.
#[sqlx::test(migrations = false)]
async fn silence_forfeits_an_issue_and_counters_a_dispute(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let h = Harness::start_configured(opts, conn, |c| {
        c.timers.marked_with_issue = Duration::from_secs(2);
        c.timers.disputed = Duration::from_secs(2);
    })
    .await;
    let provider = h.provider().await;

    let quiet_taker = to_receipt(&h, provider).await;
    mark_issue(&h, &quiet_taker).await.assert_status_is_ok();
    let quiet_maker = to_receipt(&h, provider).await;
    mark_issue(&h, &quiet_maker).await.assert_status_is_ok();
    taker_answers(&h, &quiet_maker, "DISPUTE")
        .await
        .assert_status_is_ok();

    settled(&h, &quiet_taker, "MAKER_WINS", false).await;
    let d = body(
        h.public
            .get(format!("/api/v1/offers/{}/dispute", quiet_taker.id))
            .header("Authorization", quiet_taker.maker.bearer())
            .send()
            .await,
    )
    .await;
    assert_eq!(d["resolvedBy"], "taker_silence", "{d}");

    // The maker said nothing: the dispute goes to an admin and stays there.
    for _ in 0..60 {
        let d = body(
            h.public
                .get(format!("/api/v1/offers/{}/dispute", quiet_maker.id))
                .header("Authorization", quiet_maker.taker.bearer())
                .send()
                .await,
        )
        .await;
        if d["stage"] == "waiting_admin" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let v = h
        .wait_status(quiet_maker.id, &quiet_maker.maker, "DISPUTED")
        .await;
    assert!(
        v["expiresAt"].is_null(),
        "no timer while an admin decides: {v}"
    );
    resolve(&h, quiet_maker.id, ADMIN, "TAKER_WINS")
        .await
        .assert_status_is_ok();
    settled(&h, &quiet_maker, "TAKER_WINS", true).await;
    balanced(&h).await;
    h.stop().await;
}

/// Refusals: each has its own status and code, and changes nothing.
#[sqlx::test(migrations = false)]
async fn refusals_have_their_own_codes_and_write_nothing(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let h = Harness::start(opts, conn).await;
    let provider = h.provider().await;
    let t = to_receipt(&h, provider).await;
    let issue = |reveal: Value| json!({"reason": "wrong_amount", "message": "short by 5 EUR", "reveal": reveal});
    let path = format!("/api/v1/offers/{}/issue", t.id);

    // The wrong party.
    let resp = post(
        &h,
        &t.taker,
        path.clone(),
        issue(reveal(&t.taker, t.id, Role::Taker)),
    )
    .await;
    expect_error(resp, StatusCode::FORBIDDEN, "not_your_role").await;
    // A key nobody registered.
    let stranger = openpleb_devkit::Trader::new();
    let ts = now_ms();
    let unregistered = json!({"pubkey": stranger.pubkey(), "timestamp": ts,
        "signature": stranger.sign_digest(reveal_digest(t.id, Role::Maker, ts))});
    let resp = post(&h, &t.maker, path.clone(), issue(unregistered)).await;
    expect_error(resp, StatusCode::FORBIDDEN, "reveal_refused").await;
    // A signature over another role, and a stale timestamp.
    let wrong_role = reveal(&t.maker, t.id, Role::Taker);
    let resp = post(&h, &t.maker, path.clone(), issue(wrong_role)).await;
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_signature").await;
    let old = now_ms() - 120_000;
    let stale = json!({"pubkey": t.maker.trader.pubkey(), "timestamp": old,
        "signature": t.maker.trader.sign_digest(reveal_digest(t.id, Role::Maker, old))});
    let resp = post(&h, &t.maker, path.clone(), issue(stale)).await;
    expect_error(resp, StatusCode::BAD_REQUEST, "stale_timestamp").await;
    // A deactivated user.
    let users = body(
        h.admin
            .get("/api/v1/admin/users")
            .header("Authorization", ADMIN)
            .send()
            .await,
    )
    .await;
    let user = users["items"]
        .as_array()
        .expect("users")
        .iter()
        .find(|u| u["pubkey"] == t.maker.trader.pubkey())
        .expect("the maker is registered")
        .clone();
    let set = |status: &str| {
        h.admin
            .patch(format!(
                "/api/v1/admin/users/{}/status",
                user["id"].as_str().expect("id")
            ))
            .header("Authorization", ADMIN)
            .body_json(&json!({ "status": status }))
            .send()
    };
    set("inactive").await.assert_status_is_ok();
    let resp = post(
        &h,
        &t.maker,
        path.clone(),
        issue(reveal(&t.maker, t.id, Role::Maker)),
    )
    .await;
    expect_error(resp, StatusCode::FORBIDDEN, "reveal_refused").await;
    set("active").await.assert_status_is_ok();
    // Nothing was written by any of them.
    assert_eq!(
        h.wait_status(t.id, &t.maker, "RECEIPT_SUBMITTED").await["status"],
        "RECEIPT_SUBMITTED"
    );
    let disputes: i64 = sqlx::query_scalar("select count(*) from disputes")
        .fetch_one(&h.pool)
        .await
        .expect("count");
    assert_eq!(disputes, 0);

    // Answers in the wrong state.
    expect_error(
        taker_answers(&h, &t, "FORFEIT").await,
        StatusCode::CONFLICT,
        "invalid_state",
    )
    .await;
    expect_error(
        maker_answers(&h, &t, "COUNTER").await,
        StatusCode::CONFLICT,
        "invalid_state",
    )
    .await;
    mark_issue(&h, &t).await.assert_status_is_ok();
    expect_error(
        mark_issue(&h, &t).await,
        StatusCode::CONFLICT,
        "invalid_state",
    )
    .await;
    // A resolution before the taker disputed.
    expect_error(
        resolve(&h, t.id, ADMIN, "SPLIT").await,
        StatusCode::CONFLICT,
        "invalid_state",
    )
    .await;

    // Evidence: not an image, too large, more than three.
    let evidence = |who: &Session, bytes: Vec<u8>| {
        let form = poem::test::TestForm::new().field(
            poem::test::TestFormField::bytes(bytes)
                .name("image")
                .filename("e.png")
                .content_type("image/png"),
        );
        h.public
            .post(format!("/api/v1/offers/{}/dispute/evidence", t.id))
            .header("Authorization", who.bearer())
            .multipart(form)
            .send()
    };
    let resp = evidence(&t.maker, b"GIF89a not a png".to_vec()).await;
    expect_error(resp, StatusCode::UNSUPPORTED_MEDIA_TYPE, "not_an_image").await;
    let mut huge = PNG.to_vec();
    huge.resize(5 * 1024 * 1024 + 1, 0);
    let resp = evidence(&t.maker, huge).await;
    expect_error(resp, StatusCode::PAYLOAD_TOO_LARGE, "evidence_too_large").await;
    for _ in 0..3 {
        evidence(&t.maker, PNG.to_vec())
            .await
            .assert_status(StatusCode::CREATED);
    }
    let resp = evidence(&t.maker, PNG.to_vec()).await;
    expect_error(resp, StatusCode::BAD_REQUEST, "too_much_evidence").await;
    evidence(&t.taker, PNG.to_vec())
        .await
        .assert_status(StatusCode::CREATED);

    // A second resolution is refused and pays nothing more.
    taker_answers(&h, &t, "DISPUTE").await.assert_status_is_ok();
    resolve(&h, t.id, ADMIN, "RETURN")
        .await
        .assert_status_is_ok();
    let resp = resolve(&h, t.id, ADMIN, "MAKER_WINS").await;
    expect_error(resp, StatusCode::CONFLICT, "invalid_state").await;
    settled(&h, &t, "RETURN", true).await;
    let payouts: i64 = sqlx::query_scalar("select count(*) from payouts where offer_id = $1")
        .bind(t.id)
        .fetch_one(&h.pool)
        .await
        .expect("count");
    assert_eq!(payouts, 2, "one payout per side for RETURN");

    // The owner reads its statistics with a signed request.
    let ts = now_ms();
    let key = t.maker.trader.pubkey();
    let resp = h
        .public
        .post("/api/v1/disputes/stats")
        .body_json(&json!({"pubkey": key, "timestamp": ts,
            "signature": t.maker.trader.sign_digest(stats_digest(&key, ts))}))
        .send()
        .await;
    let stats = body(resp).await;
    assert_eq!(stats["issuesRaised"], 1, "{stats}");
    balanced(&h).await;
    h.stop().await;
}

/// Racing moves end with one winner and one set of payouts.
#[sqlx::test(migrations = false)]
async fn racing_moves_have_one_winner(opts: PgPoolOptions, conn: PgConnectOptions) {
    let h = Harness::start(opts, conn).await;
    let provider = h.provider().await;

    // The maker forfeits while an admin resolves; then two admins at once.
    for (first, second) in [("maker", ADMIN), ("admin", ADMIN)] {
        let t = to_receipt(&h, provider).await;
        mark_issue(&h, &t).await.assert_status_is_ok();
        taker_answers(&h, &t, "DISPUTE").await.assert_status_is_ok();
        let (a, b) = if first == "maker" {
            tokio::join!(
                maker_answers(&h, &t, "FORFEIT"),
                resolve(&h, t.id, second, "SPLIT")
            )
        } else {
            tokio::join!(
                resolve(&h, t.id, ADMIN, "MAKER_WINS"),
                resolve(&h, t.id, second, "TAKER_WINS")
            )
        };
        let statuses = [a.0.status(), b.0.status()];
        let wins = statuses.iter().filter(|s| s.is_success()).count();
        assert_eq!(wins, 1, "{first}: {statuses:?}");
        assert!(statuses.contains(&StatusCode::CONFLICT), "{statuses:?}");
        let v = h.wait_status(t.id, &t.maker, "RESOLVED").await;
        let outcome = v["outcome"].as_str().expect("outcome").to_owned();
        settled(&h, &t, &outcome, true).await;
        let sides: i64 = sqlx::query_scalar(
            "select count(distinct party) from payouts where offer_id = $1 and party <> 'platform'",
        )
        .bind(t.id)
        .fetch_one(&h.pool)
        .await
        .expect("count");
        let expected = match outcome.as_str() {
            "SPLIT" => 2,
            _ => 1,
        };
        assert_eq!(sides, expected, "{outcome}: one set of payouts");
    }

    // The taker's lapse fires while it disputes.
    let t = to_receipt(&h, provider).await;
    mark_issue(&h, &t).await.assert_status_is_ok();
    sqlx::query("update offers set expires_at = now() - interval '1 second' where id = $1")
        .bind(t.id)
        .execute(&h.pool)
        .await
        .expect("due");
    let ctx = h.trade_ctx();
    let (lapsed, answered) = tokio::join!(
        lapse(&ctx, t.id, OfferStatus::MarkedWithIssue),
        taker_answers(&h, &t, "DISPUTE")
    );
    let lapsed = lapsed.expect("lapse");
    let v = body(h.get_offer(t.id, Some(&t.maker)).await).await;
    match v["status"].as_str() {
        Some("RESOLVED") => {
            assert_eq!(answered.0.status(), StatusCode::CONFLICT);
            settled(&h, &t, "MAKER_WINS", false).await;
        }
        Some("DISPUTED") => {
            assert!(answered.0.status().is_success());
            assert_eq!(lapsed, openpleb_common::trade::lapse::Lapsed::Nothing);
        }
        other => panic!("unexpected {other:?}"),
    }
    balanced(&h).await;
    h.stop().await;
}

/// Who sees what in MARKED_WITH_ISSUE, DISPUTED and RESOLVED: the parties and admins see the
/// offer and the dispute; anonymous callers and other sessions learn nothing.
#[sqlx::test(migrations = false)]
async fn only_the_parties_and_admins_see_a_dispute(opts: PgPoolOptions, conn: PgConnectOptions) {
    let h = Harness::start(opts, conn).await;
    let provider = h.provider().await;
    let other = h.session().await;
    let t = to_receipt(&h, provider).await;
    let check = |status: &'static str| {
        let (h, t, other) = (&h, &t, &other);
        async move {
            let id = t.id;
            h.get_offer(id, None)
                .await
                .assert_status(StatusCode::NOT_FOUND);
            h.get_offer(id, Some(other))
                .await
                .assert_status(StatusCode::NOT_FOUND);
            for who in [&t.maker, &t.taker] {
                let v = body(h.get_offer(id, Some(who)).await).await;
                assert_eq!(v["status"], status, "{v}");
                let resp = h
                    .public
                    .get(format!("/api/v1/offers/{id}/dispute"))
                    .header("Authorization", who.bearer())
                    .send()
                    .await;
                resp.assert_status_is_ok();
                let d = body(resp).await;
                assert!(d.get("makerPubkey").is_none(), "keys are for admins: {d}");
            }
            let resp = h
                .public
                .get(format!("/api/v1/offers/{id}/dispute"))
                .header("Authorization", other.bearer())
                .send()
                .await;
            expect_error(resp, StatusCode::NOT_FOUND, "offer_not_found").await;
            h.public
                .get(format!("/api/v1/offers/{id}/dispute"))
                .send()
                .await
                .assert_status(StatusCode::UNAUTHORIZED);
            let resp = h
                .admin
                .get(format!("/api/v1/admin/disputes/{id}"))
                .header("Authorization", ADMIN)
                .send()
                .await;
            resp.assert_status_is_ok();
            let v = body(
                h.admin
                    .get(format!("/api/v1/admin/offers?status={status}"))
                    .header("Authorization", ADMIN)
                    .send()
                    .await,
            )
            .await;
            assert!(
                v["items"]
                    .as_array()
                    .expect("items")
                    .iter()
                    .any(|o| o["id"] == id.to_string()),
                "{v}"
            );
            // Another session cannot move it either.
            let resp = post(
                h,
                other,
                format!("/api/v1/offers/{id}/dispute/answer"),
                json!({"action": "FORFEIT"}),
            )
            .await;
            expect_error(resp, StatusCode::NOT_FOUND, "offer_not_found").await;
        }
    };
    mark_issue(&h, &t).await.assert_status_is_ok();
    check("MARKED_WITH_ISSUE").await;
    taker_answers(&h, &t, "DISPUTE").await.assert_status_is_ok();
    check("DISPUTED").await;
    maker_answers(&h, &t, "FORFEIT").await.assert_status_is_ok();
    check("RESOLVED").await;
    h.stop().await;
}
