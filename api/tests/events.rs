//! Event streams: what they tell (a trade's moves, to whom), and against a cheap attacker:
//! open streams are capped per session and per client address, a slot comes back when its
//! stream closes, and a session's stream ends when the session does.

mod common;

use std::time::Duration;

use common::{expect_error, Harness, Session, Trade};
use futures::StreamExt;
use poem::http::StatusCode;
use poem::test::TestResponse;
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

async fn session_stream(h: &Harness, s: &Session) -> TestResponse {
    h.public
        .get("/api/v1/events/session")
        .header("Authorization", s.bearer())
        .send()
        .await
}

async fn book_stream(h: &Harness) -> TestResponse {
    h.public.get("/api/v1/events/book").send().await
}

/// A logout ends the session's stream at once, an expiry within a re-read; with the default caps a session holds three
/// streams and a client address twenty (session streams included); closing one frees its slot.
/// (The in-process client has no peer address: every request here is one client.)
#[sqlx::test(migrations = false)]
async fn streams_are_capped_and_end_with_their_session(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let h = Harness::start(opts, conn).await;
    let leaving = h.session().await;
    let staying = h.session().await;

    let resp = session_stream(&h, &leaving).await;
    resp.assert_status_is_ok();
    let mut stream = resp.sse_stream();
    h.public
        .delete("/api/v1/sessions")
        .header("Authorization", leaving.bearer())
        .send()
        .await
        .assert_status(StatusCode::NO_CONTENT);
    let end = tokio::time::timeout(Duration::from_secs(5), stream.next()).await;
    assert!(
        matches!(end, Ok(None)),
        "the stream ends with its session: {end:?}"
    );
    drop(stream);

    // A session that ends elsewhere (expired here in the database) is noticed by the stream's
    // periodic re-read.
    let expiring = h.session().await;
    let resp = session_stream(&h, &expiring).await;
    resp.assert_status_is_ok();
    let mut stream = resp.sse_stream();
    let bat = openpleb_common::mint::ParsedBat::parse(&expiring.bat).expect("bat");
    sqlx::query(
        "update sessions set created_at = now() - interval '2 hours',
                expires_at = now() - interval '1 second' where bat_hash = $1",
    )
    .bind(bat.hash.as_slice())
    .execute(&h.pool)
    .await
    .expect("expire");
    let end = tokio::time::timeout(Duration::from_secs(15), stream.next()).await;
    assert!(matches!(end, Ok(None)), "the stream ends: {end:?}");
    drop(stream);

    let mut open = Vec::new();
    for _ in 0..3 {
        let resp = session_stream(&h, &staying).await;
        resp.assert_status_is_ok();
        open.push(resp);
    }
    expect_error(
        session_stream(&h, &staying).await,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_streams",
    )
    .await;
    for _ in 0..17 {
        let resp = book_stream(&h).await;
        resp.assert_status_is_ok();
        open.push(resp);
    }
    expect_error(
        book_stream(&h).await,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_streams",
    )
    .await;
    // Closing a stream gives its slot back.
    drop(open.pop());
    book_stream(&h).await.assert_status_is_ok();
    drop(open);
    h.stop().await;
}

/// Live updates: the public stream announces the offer entering and leaving the book (and
/// nothing about the parties); the maker's private stream follows every move of its offer;
/// another session's stream stays silent about it.
#[sqlx::test(migrations = false)]
async fn live_updates(opts: PgPoolOptions, conn: PgConnectOptions) {
    let h = Harness::start_manual(opts, conn).await;
    let (provider, [maker, taker, other]) = h.cast().await;

    let mut book = book_stream(&h).await.sse_stream();
    let mut mine = session_stream(&h, &maker).await.sse_stream();
    let mut theirs = session_stream(&h, &other).await.sse_stream();

    let plan = Trade::new(&h).maker(&maker).provider(provider).fiat(900);
    let plan = plan.field("paymentDetails", json!("IBAN"));
    let uid = plan.funded().await.expect("funded").id;
    let id = uid.to_string();
    h.claim(uid, &taker).await;

    let data = |e: &poem::web::sse::Event| -> (String, serde_json::Value) {
        match e {
            poem::web::sse::Event::Message { event, data, .. } => {
                (event.clone(), serde_json::from_str(data).expect("json"))
            }
            other => panic!("unexpected {other:?}"),
        }
    };
    let (kind, v) = data(&next_event(&mut book).await);
    assert_eq!(
        (kind.as_str(), v["offerId"].as_str()),
        ("offer.listed", Some(id.as_str()))
    );
    assert_eq!(
        v.as_object().map(|o| o.len()),
        Some(1),
        "no party data: {v}"
    );
    let (kind, v) = data(&next_event(&mut book).await);
    assert_eq!(
        (kind.as_str(), v["offerId"].as_str()),
        ("offer.unlisted", Some(id.as_str()))
    );

    let mut statuses = Vec::new();
    for _ in 0..3 {
        let (kind, v) = data(&next_event(&mut mine).await);
        assert_eq!(kind, "offer.status");
        assert_eq!(v["offerId"], id);
        statuses.push(v["status"].as_str().expect("status").to_owned());
    }
    assert_eq!(statuses, ["CREATED", "INVOICE_PAID", "TAKER_BOND_PAID"]);

    let silent = tokio::time::timeout(std::time::Duration::from_millis(500), theirs.next()).await;
    assert!(
        silent.is_err(),
        "another session hears nothing of this offer"
    );
    h.stop().await;
}

async fn next_event<S>(s: &mut S) -> poem::web::sse::Event
where
    S: futures::Stream<Item = poem::web::sse::Event> + Unpin,
{
    tokio::time::timeout(std::time::Duration::from_secs(10), s.next())
        .await
        .expect("an event in time")
        .expect("stream open")
}
