//! The one mapping of errors to HTTP: statuses, stable codes, and no internal detail.

use openpleb_common::domain::offer::OfferStatus;
use openpleb_common::trade::Role;
use openpleb_common::wallet::WalletId;

use super::*;

fn mapped(e: TradeError) -> (u16, &'static str, String, Option<u64>) {
    let api = ApiError::from(e);
    (api.status.as_u16(), api.code, api.message, api.retry_after)
}

#[test]
fn business_refusals_have_their_own_status_and_code() {
    let cases = [
        (TradeError::NotFound, 404, "offer_not_found"),
        (TradeError::NotYours(Role::Maker), 403, "not_your_role"),
        (
            TradeError::WrongState(OfferStatus::Completed),
            409,
            "invalid_state",
        ),
        (TradeError::NotAvailable, 409, "offer_not_available"),
        (TradeError::DeadlinePassed, 409, "deadline_passed"),
        (TradeError::NoClaim, 404, "claim_not_found"),
        (TradeError::AlreadyClaimed, 409, "already_claimed"),
        (TradeError::TooManyClaims(10), 409, "too_many_claims"),
        (
            TradeError::TooManyPayableQuotes(20),
            409,
            "too_many_payable_invoices",
        ),
        (TradeError::OwnOffer, 403, "own_offer"),
        (
            TradeError::TooManyUnpaidClaims(1),
            409,
            "too_many_unpaid_claims",
        ),
        (TradeError::ClaimCooldown(30), 429, "claim_cooldown"),
        (
            TradeError::TooManyOpenOffers(10),
            409,
            "too_many_open_offers",
        ),
        (TradeError::NotFundable, 409, "offer_not_fundable"),
        (
            TradeError::invalid("lifetime_too_long", "lifetimeSecs", "at most 60 s"),
            400,
            "lifetime_too_long",
        ),
        (
            TradeError::TooLarge {
                code: "receipt_too_large",
                field: "image",
                max: 10,
            },
            413,
            "receipt_too_large",
        ),
    ];
    for (e, status, code) in cases {
        let (s, c, _, _) = mapped(e);
        assert_eq!((s, c), (status, code));
    }
}

#[test]
fn declared_formats_keep_their_codes() {
    let nested = "parse request payload error: failed to parse \"RegistrationPayload\": field \
                  `pubkey` verification failed. pattern(\"x\") (occurred while parsing \
                  \"RegisterRequest\")";
    assert_eq!(format_code(nested), Some("malformed_pubkey"));
    let param = "failed to parse parameter `cursor`: verification failed. pattern(\"x\")";
    assert_eq!(format_code(param), Some("invalid_cursor"));
    let other = "parse request payload error: failed to parse \"RevealBody\": field \
                 `pubkey` verification failed.";
    assert_eq!(format_code(other), None);
}

#[test]
fn a_busy_wallet_is_a_503_with_retry_after() {
    let wallet = WalletId::parse("session_x").expect("id");
    let (status, code, _, retry) = mapped(TradeError::Wallet(WalletError::Busy(wallet)));
    assert_eq!((status, code), (503, "wallet_busy"));
    assert_eq!(retry, Some(WALLET_BUSY_RETRY_SECS));
    let resp =
        ApiError::from(WalletError::Busy(WalletId::parse("session_y").expect("id"))).to_response();
    assert_eq!(
        resp.headers()
            .get(poem::http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()),
        Some("2")
    );
}

#[test]
fn an_unreachable_dependency_is_a_503_with_retry_after() {
    let mint = mapped(TradeError::MintUnavailable);
    assert_eq!(
        (mint.0, mint.1, mint.3),
        (503, "mint_unavailable", Some(DEPENDENCY_RETRY_SECS))
    );
    let refused = mapped(TradeError::Wallet(WalletError::Cdk(cdk::Error::HttpError(
        None,
        "connection refused".to_owned(),
    ))));
    assert_eq!((refused.0, refused.1), (503, "mint_unavailable"));
    let bat = ApiError::from(BatError::Unavailable);
    assert_eq!((bat.code, bat.retry_after), ("mint_unavailable", Some(3)));
    for lost in [
        sqlx::Error::PoolTimedOut,
        sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
    ] {
        let (status, code, _, retry) = mapped(TradeError::Database(lost));
        assert_eq!(
            (status, code, retry),
            (503, "database_unavailable", Some(3))
        );
    }
    // A statement's own failure stays internal.
    let (status, code, _, _) = mapped(TradeError::Database(sqlx::Error::RowNotFound));
    assert_eq!((status, code), (500, "internal_error"));
}

#[test]
fn a_spent_token_is_a_conflict() {
    let (status, code, _, _) = mapped(TradeError::Wallet(WalletError::Cdk(
        cdk::Error::TokenAlreadySpent,
    )));
    assert_eq!((status, code), (409, "token_spent"));
}

#[test]
fn internal_failures_say_nothing_about_their_cause() {
    let secret_detail = "payouts exceed the escrow of offer 1234";
    for e in [
        TradeError::Inconsistent(secret_detail.to_owned()),
        TradeError::Database(sqlx::Error::Configuration(Box::new(std::io::Error::other(
            secret_detail,
        )))),
        TradeError::Wallet(WalletError::Io(std::io::Error::other(secret_detail))),
    ] {
        let (status, code, message, _) = mapped(e);
        assert_eq!((status, code), (500, "internal_error"));
        assert_eq!(message, "internal error");
    }
}
