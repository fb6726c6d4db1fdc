//! What an upload tells about the person who made it: a receipt and evidence carrying GPS,
//! camera, time, author and place in their metadata are stored and served without any of it,
//! and still decode to the same pixels; an admin who looks at them is on the record.

mod common;

use common::dispute::{mark_issue, taker_answers, Amounts, Trade};
use common::{body, Harness, Session, ADMIN};
use openpleb_devkit::images::{self, PRIVATE_MARKERS};
use poem::http::StatusCode;
use poem::test::{TestForm, TestFormField};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;

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
    let provider = h.provider().await;
    let maker = h.session().await;
    let taker = h.session().await;
    let (id, _) = h.funded_offer(&maker, provider).await;
    h.claim(id, &taker).await;
    h.wait_status(id, &taker, "TAKER_BOND_PAID").await;

    // A phone photo of the transfer as the receipt.
    let jpeg = images::jpeg_with_exif().expect("jpeg");
    h.public
        .post(format!("/api/v1/offers/{id}/receipt"))
        .header("Authorization", taker.bearer())
        .multipart(form(jpeg.clone(), "image/jpeg"))
        .send()
        .await
        .assert_status_is_ok();
    let served = get_bytes(&h, &maker, format!("/api/v1/offers/{id}/receipt")).await;
    clean_and_same(&jpeg, &served, "JPEG receipt");

    // A screenshot and a WebP as evidence of the dispute that follows.
    let t = Trade {
        id,
        maker,
        taker,
        amounts: Amounts {
            s: 0,
            pf: 0,
            tf: 0,
            mb: 0,
            tb: 0,
        },
    };
    mark_issue(&h, &t).await.assert_status_is_ok();
    taker_answers(&h, &t, "DISPUTE").await.assert_status_is_ok();
    for (original, content_type) in [
        (images::png_with_text().expect("png"), "image/png"),
        (images::webp_with_xmp().expect("webp"), "image/webp"),
    ] {
        let original: Vec<u8> = original;
        let resp = h
            .public
            .post(format!("/api/v1/offers/{id}/dispute/evidence"))
            .header("Authorization", t.taker.bearer())
            .multipart(form(original.clone(), content_type))
            .send()
            .await;
        resp.assert_status(StatusCode::CREATED);
        let evidence: Uuid = body(resp).await["id"]
            .as_str()
            .expect("id")
            .parse()
            .expect("uuid");
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
