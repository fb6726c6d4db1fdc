//! Trade data — receipts, evidence, payment details, dispute messages — is the most personal
//! thing the platform stores. An upload carrying GPS, camera, time, author and place in its
//! metadata is stored and served without any of it and still decodes to the same pixels; an
//! admin who looks at it is on the record; and `RETENTION_TRADE_DATA_DAYS` after an offer is
//! final its trade data is gone, its money records untouched.

mod common;

use std::time::Duration;

use common::dispute::{
    maker_answers, mark_issue, resolve, taker_answers, to_receipt, Amounts, Trade,
};
use common::{balanced, body, expect_error, Harness, Session, ADMIN, PNG};
use openpleb_devkit::images::{self, PRIVATE_MARKERS};
use poem::http::StatusCode;
use poem::test::{TestForm, TestFormField};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;

fn png() -> TestForm {
    form(PNG.to_vec(), "image/png")
}

fn form(bytes: Vec<u8>, content_type: &str) -> TestForm {
    TestForm::new().field(
        TestFormField::bytes(bytes)
            .name("image")
            .filename("upload")
            .content_type(content_type),
    )
}

/// `served` has no private marker and shows the picture `original` shows.
fn clean_and_same(original: &[u8], served: &[u8], what: &str) {
    for m in PRIVATE_MARKERS {
        let raw = String::from_utf8_lossy(original);
        assert!(raw.contains(m), "the test's {what} lacks {m}");
        assert!(
            !String::from_utf8_lossy(served).contains(m),
            "{what}: {m} survived"
        );
    }
    let before = images::pixels(original).expect("original decodes");
    let after = images::pixels(served).expect("stored image decodes");
    assert_eq!(before.dimensions(), after.dimensions(), "{what}");
    assert!(before == after, "{what}: the pixels changed");
}

/// A fresh maker and taker with a funded offer whose bond is paid: the taker is to pay.
async fn bonded(h: &Harness) -> Trade {
    let provider = h.provider().await;
    let maker = h.session().await;
    let taker = h.session().await;
    let (id, _) = h.funded_offer(&maker, provider).await;
    h.claim(id, &taker).await;
    let v = h.wait_status(id, &maker, "TAKER_BOND_PAID").await;
    Trade {
        id,
        maker,
        taker,
        amounts: Amounts::of(&v).expect("amounts"),
    }
}

/// The taker sends `receipt` (a multipart form).
async fn send_receipt(h: &Harness, t: &Trade, receipt: TestForm) {
    h.public
        .post(format!("/api/v1/offers/{}/receipt", t.id))
        .header("Authorization", t.taker.bearer())
        .multipart(receipt)
        .send()
        .await
        .assert_status_is_ok();
}

/// The maker marks an issue and the taker disputes it.
async fn open_dispute(h: &Harness, t: &Trade) {
    mark_issue(h, t).await.assert_status_is_ok();
    taker_answers(h, t, "DISPUTE").await.assert_status_is_ok();
}

async fn get_bytes(h: &Harness, who: &Session, path: String) -> Vec<u8> {
    let resp = h
        .public
        .get(path)
        .header("Authorization", who.bearer())
        .send()
        .await;
    resp.assert_status_is_ok();
    resp.0.into_body().into_vec().await.expect("body")
}

async fn admin_get(h: &Harness, path: String) -> Vec<u8> {
    let resp = h
        .admin
        .get(path)
        .header("Authorization", ADMIN)
        .send()
        .await;
    resp.assert_status_is_ok();
    resp.0.into_body().into_vec().await.expect("body")
}

#[sqlx::test(migrations = false)]
async fn receipts_and_evidence_are_stored_without_metadata(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let h = Harness::start(opts, conn).await;
    let t = bonded(&h).await;
    let id = t.id;

    // A phone photo of the transfer as the receipt.
    let jpeg = images::jpeg_with_exif().expect("jpeg");
    send_receipt(&h, &t, form(jpeg.clone(), "image/jpeg")).await;
    let served = get_bytes(&h, &t.maker, format!("/api/v1/offers/{id}/receipt")).await;
    clean_and_same(&jpeg, &served, "JPEG receipt");

    // A screenshot and a WebP as evidence of the dispute that follows.
    open_dispute(&h, &t).await;
    for (original, content_type) in [
        (images::png_with_text().expect("png"), "image/png"),
        (images::webp_with_xmp().expect("webp"), "image/webp"),
    ] {
        let original: Vec<u8> = original;
        let evidence = add_evidence(&h, &t.taker, id, form(original.clone(), content_type)).await;
        let path = format!("/api/v1/offers/{id}/dispute/evidence/{evidence}");
        let served = get_bytes(&h, &t.maker, path).await;
        clean_and_same(&original, &served, content_type);
        let path = format!("/api/v1/admin/disputes/{id}/evidence/{evidence}");
        let seen = admin_get(&h, path).await;
        clean_and_same(&original, &seen, content_type);
    }

    // An admin's reads of personal data are recorded beside its writes; a listing shows no
    // payment details, so it reads none.
    let seen = admin_get(&h, format!("/api/v1/admin/offers/{id}/receipt")).await;
    clean_and_same(&jpeg, &seen, "JPEG receipt, as the admin sees it");
    admin_get(&h, format!("/api/v1/admin/offers/{id}")).await;
    admin_get(&h, format!("/api/v1/admin/disputes/{id}")).await;
    let list: serde_json::Value =
        serde_json::from_slice(&admin_get(&h, "/api/v1/admin/offers".into()).await).expect("json");
    let listed = &list["items"].as_array().expect("items")[0];
    assert_eq!(listed["id"], id.to_string());
    assert!(listed.get("paymentDetails").is_none(), "{listed}");
    let actions: serde_json::Value =
        serde_json::from_slice(&admin_get(&h, "/api/v1/admin/actions".into()).await).expect("json");
    let mut reads: Vec<(String, String)> = actions
        .as_array()
        .expect("actions")
        .iter()
        .filter(|a| a["action"].as_str().is_some_and(|x| x.starts_with("view_")))
        .map(|a| {
            assert_eq!(a["admin"], "admin", "{a}");
            assert_eq!(a["target"], id.to_string(), "{a}");
            (
                a["action"].as_str().unwrap_or_default().to_owned(),
                a["note"].to_string(),
            )
        })
        .collect();
    reads.sort();
    let kinds: Vec<&str> = reads.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "view_dispute",
            "view_evidence",
            "view_evidence",
            "view_offer",
            "view_receipt"
        ],
        "{actions}"
    );

    // What PostgreSQL holds is what was served: no copy with metadata anywhere.
    let stored: Vec<Vec<u8>> = sqlx::query_scalar(
        "select image from receipts where offer_id = $1
         union all select image from dispute_evidence where offer_id = $1",
    )
    .bind(id)
    .fetch_all(&h.pool)
    .await
    .expect("images");
    assert_eq!(stored.len(), 3);
    for image in stored {
        let text = String::from_utf8_lossy(&image);
        assert!(PRIVATE_MARKERS.iter().all(|m| !text.contains(m)));
    }
}

async fn add_evidence(h: &Harness, who: &Session, id: Uuid, image: TestForm) -> Uuid {
    let resp = h
        .public
        .post(format!("/api/v1/offers/{id}/dispute/evidence"))
        .header("Authorization", who.bearer())
        .multipart(image)
        .send()
        .await;
    resp.assert_status(StatusCode::CREATED);
    body(resp).await["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid")
}

/// What PostgreSQL still holds of an offer's trade data, sealed or not: payment details,
/// receipt image and note, evidence images, message texts.
async fn held(h: &Harness, id: Uuid) -> (bool, bool, bool, i64, i64) {
    sqlx::query_as(
        "select coalesce(o.payment_details, o.payment_details_sealed::text) is not null,
                coalesce((select image is not null from receipts where offer_id = o.id), false),
                coalesce((select coalesce(note, note_sealed::text) is not null
                            from receipts where offer_id = o.id), false),
                (select count(*) from dispute_evidence where offer_id = o.id and image is not null),
                (select count(*) from dispute_messages
                  where offer_id = o.id and coalesce(body, body_sealed::text) is not null)
           from offers o where o.id = $1",
    )
    .bind(id)
    .fetch_one(&h.pool)
    .await
    .expect("held")
}

#[sqlx::test(migrations = false)]
async fn trade_data_goes_after_the_retention_period_and_the_money_stays(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let h = Harness::start(opts, conn).await;
    let provider = h.provider().await;
    // A dispute resolved SPLIT, with evidence and messages; a dispute still waiting for an
    // admin; and a plain completed trade.
    let resolved = to_receipt(&h, provider).await;
    mark_issue(&h, &resolved).await.assert_status_is_ok();
    taker_answers(&h, &resolved, "DISPUTE")
        .await
        .assert_status_is_ok();
    let evidence = add_evidence(&h, &resolved.taker, resolved.id, png()).await;
    maker_answers(&h, &resolved, "COUNTER")
        .await
        .assert_status_is_ok();
    resolve(&h, resolved.id, ADMIN, "SPLIT")
        .await
        .assert_status_is_ok();
    let open = to_receipt(&h, provider).await;
    mark_issue(&h, &open).await.assert_status_is_ok();
    taker_answers(&h, &open, "DISPUTE")
        .await
        .assert_status_is_ok();
    let open_evidence = add_evidence(&h, &open.taker, open.id, png()).await;
    let completed = to_receipt(&h, provider).await;
    h.public
        .post(format!("/api/v1/offers/{}/complete", completed.id))
        .header("Authorization", completed.maker.bearer())
        .send()
        .await
        .assert_status_is_ok();
    for t in [&resolved, &completed] {
        h.released_payouts(t.id, &t.maker).await;
        h.released_payouts(t.id, &t.taker).await;
    }
    balanced(&h, 2).await;
    assert_eq!(held(&h, resolved.id).await, (true, true, false, 1, 4));
    let payouts = || async {
        // The fee's state may move on (RELEASED → SWEPT into the treasury) meanwhile.
        sqlx::query_as::<_, (Uuid, String, i64, bool)>(
            "select offer_id, party, amount_sats, state in ('RELEASED', 'SWEPT') from payouts
              order by offer_id, party, amount_sats",
        )
        .fetch_all(&h.pool)
        .await
        .expect("payouts")
    };
    let before = payouts().await;

    // Inside the period nothing goes; past it, the final offers' data does, once.
    let run = || async {
        openpleb_worker::jobs::prune::run(&h.trade_ctx())
            .await
            .expect("prune")
            .trade_data
    };
    assert_eq!(run().await, 0);
    sqlx::query("update offers set state_entered_at = state_entered_at - $1")
        .bind(Duration::from_secs(31 * 86_400))
        .execute(&h.pool)
        .await
        .expect("age the offers");
    assert_eq!(run().await, 2);
    assert_eq!(run().await, 0);

    for t in [&resolved, &completed] {
        assert_eq!(held(&h, t.id).await, (false, false, false, 0, 0));
        let offer = body(h.get_offer(t.id, Some(&t.maker)).await).await;
        assert!(offer.get("paymentDetails").is_none(), "{offer}");
        assert!(offer["tradeDataDeletedAt"].is_string(), "{offer}");
        let resp = h
            .public
            .get(format!("/api/v1/offers/{}/receipt", t.id))
            .header("Authorization", t.maker.bearer())
            .send()
            .await;
        expect_error(resp, StatusCode::NOT_FOUND, "trade_data_deleted").await;
    }
    // The resolved dispute keeps its shape: who wrote what kind of message when, which images
    // there were; not their content.
    let path = format!("/api/v1/admin/disputes/{}", resolved.id);
    let file: serde_json::Value = serde_json::from_slice(&admin_get(&h, path).await).expect("json");
    let messages = file["dispute"]["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 4, "{file}");
    assert!(messages
        .iter()
        .all(|m| m["body"] == "" && m["deletedAt"].is_string()));
    assert_eq!(file["dispute"]["evidence"][0]["size"], 0, "{file}");
    let resp = h
        .admin
        .get(format!(
            "/api/v1/admin/disputes/{}/evidence/{evidence}",
            resolved.id
        ))
        .header("Authorization", ADMIN)
        .send()
        .await;
    expect_error(resp, StatusCode::NOT_FOUND, "trade_data_deleted").await;

    // The dispute still waiting for an admin keeps everything.
    assert_eq!(held(&h, open.id).await, (true, true, false, 1, 2));
    let served = get_bytes(
        &h,
        &open.maker,
        format!(
            "/api/v1/offers/{}/dispute/evidence/{open_evidence}",
            open.id
        ),
    )
    .await;
    assert_eq!(served, PNG);

    // Money: every payout as it was, the audit still balanced.
    assert_eq!(payouts().await, before);
    balanced(&h, 2).await;
    h.stop().await;
}

/// Every row of every table, as text (bytea as hex): what a data dump holds.
async fn dump(h: &Harness) -> String {
    let tables: Vec<(String, String)> = sqlx::query_as(
        "select schemaname::text, tablename::text from pg_tables
          where schemaname not in ('pg_catalog', 'information_schema')",
    )
    .fetch_all(&h.pool)
    .await
    .expect("tables");
    let mut out = String::new();
    for (schema, table) in tables {
        let rows: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "select string_agg(t::text, E'\\n') from \"{schema}\".\"{table}\" t"
        )))
        .fetch_one(&h.pool)
        .await
        .expect("rows");
        out.push_str(&rows.unwrap_or_default());
        out.push('\n');
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[sqlx::test(migrations = false)]
async fn a_database_dump_holds_no_trade_data_in_plaintext(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let h = Harness::start(opts, conn).await;
    let t = bonded(&h).await;
    let id = t.id;
    let receipt = images::png_with_text().expect("png");
    let note = "sent from Alice Example's account at Sparkasse";
    let receipt = form(receipt, "image/png").field(TestFormField::text(note).name("note"));
    send_receipt(&h, &t, receipt).await;
    open_dispute(&h, &t).await;
    let evidence = add_evidence(&h, &t.taker, id, png()).await;

    // What the parties are served, in plaintext.
    let offer = body(h.get_offer(id, Some(&t.maker)).await).await;
    let details = offer["paymentDetails"]
        .as_str()
        .expect("details")
        .to_owned();
    let served_receipt = get_bytes(&h, &t.maker, format!("/api/v1/offers/{id}/receipt")).await;
    let served_evidence = get_bytes(
        &h,
        &t.maker,
        format!("/api/v1/offers/{id}/dispute/evidence/{evidence}"),
    )
    .await;
    let path = format!("/api/v1/offers/{id}/dispute");
    let file: serde_json::Value =
        serde_json::from_slice(&get_bytes(&h, &t.maker, path).await).expect("json");
    let messages: Vec<String> = file["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["body"].as_str().expect("body").to_owned())
        .collect();
    assert_eq!(messages.len(), 2, "{file}");

    let dump = dump(&h).await;
    assert!(
        dump.contains(&id.to_string()),
        "the dump reads the offer's rows"
    );
    for text in [details.as_str(), note]
        .into_iter()
        .chain(messages.iter().map(String::as_str))
    {
        assert!(!text.is_empty());
        assert!(!dump.contains(text), "{text:?} is in the dump");
        assert!(
            !dump.contains(&hex(text.as_bytes())),
            "{text:?} is in the dump as hex"
        );
    }
    // The images' pixel data (past the PNG signature and header) is nowhere, in any encoding.
    for image in [&served_receipt, &served_evidence] {
        let pixels = &image[41..image.len().min(41 + 24)];
        assert!(!dump.contains(&hex(pixels)), "image bytes are in the dump");
    }
    h.stop().await;
}

#[sqlx::test(migrations = false)]
async fn rotating_the_data_secret_reseals_and_old_rows_stay_readable(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let h = Harness::start(opts, conn).await;
    let t = bonded(&h).await;
    send_receipt(&h, &t, png()).await;
    mark_issue(&h, &t).await.assert_status_is_ok();
    let old_key = format!("1:{}", "da".repeat(32));
    let new_key = format!("2:{}", "e7".repeat(32));
    let with_keys = |secrets: &str| {
        let base = h.trade_ctx();
        let mut config = (*base.config).clone();
        config.data = openpleb_common::keyring::data::DataKeys::parse(secrets).expect("keys");
        openpleb_common::trade::TradeCtx {
            config: std::sync::Arc::new(config),
            ..base
        }
    };
    let key_ids = || async {
        sqlx::query_as::<_, (i16, i16, i64)>(
            "select o.data_key_id, r.key_id,
                    (select count(*) from dispute_messages m where m.offer_id = o.id and m.key_id = 2)
               from offers o join receipts r on r.offer_id = o.id where o.id = $1",
        )
        .bind(t.id)
        .fetch_one(&h.pool)
        .await
        .expect("key ids")
    };
    assert_eq!(key_ids().await, (1, 1, 0));
    let before = openpleb_common::trade::receipt::get(&h.trade_ctx(), None, t.id)
        .await
        .expect("receipt")
        .expect("some");

    // The new secret first, the old one kept: old rows read, new writes and the job use key 2.
    let rotated = with_keys(&format!("{new_key},{old_key}"));
    let read = openpleb_common::trade::receipt::get(&rotated, None, t.id)
        .await
        .expect("receipt under the old key")
        .expect("some");
    assert_eq!(read.image, before.image);
    let resealed = openpleb_common::trade::reseal::batch(&rotated, 100)
        .await
        .expect("reseal");
    assert!(
        resealed >= 3,
        "offer, receipt and the issue's message: {resealed}"
    );
    assert_eq!(key_ids().await, (2, 2, 1));
    assert_eq!(
        openpleb_common::trade::reseal::batch(&rotated, 100)
            .await
            .expect("again"),
        0
    );

    // The old secret dropped: everything still reads, the same as before.
    let new_only = with_keys(&new_key);
    let after = openpleb_common::trade::receipt::get(&new_only, None, t.id)
        .await
        .expect("receipt under the new key")
        .expect("some");
    assert_eq!(after.image, before.image);
    let offer = openpleb_common::trade::load(&new_only, t.id)
        .await
        .expect("offer");
    assert!(offer.payment_details.is_some_and(|d| d.starts_with("IBAN")));
    let file = openpleb_common::trade::dispute::file(
        &new_only,
        openpleb_common::trade::dispute::Reader::Admin,
        t.id,
    )
    .await
    .expect("file");
    assert_eq!(
        file.messages[0].body.as_deref(),
        Some("nothing arrived on my account")
    );
    // Without the key a row is under, reading it fails plainly (no plaintext, no panic).
    let old_only = with_keys(&old_key);
    assert!(openpleb_common::trade::load(&old_only, t.id).await.is_err());
    h.stop().await;
}
