//! What can go wrong with a wallet operation, and what a client can do about it.
//!
//! [`WalletError`] keeps the cause (callers match on `Busy`, `LeaseLost`, `NotFound`, `NotEmpty`,
//! `Superseded` and `Cdk(TokenAlreadySpent)`); [`WalletError::kind`] sorts every cause into the
//! few answers a client can act on, so the HTTP layer maps wallet failures in one place.

use cdk::{amount, dhke};

use super::layout::WalletId;
use super::service_auth::ServiceAuthError;

/// What can go wrong with a wallet operation.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    /// Another process holds the wallet's lease.
    #[error("wallet {0} is open in another process")]
    Busy(WalletId),
    /// The wallet's lease was taken by another process (or ran out) under this one: the
    /// operation stopped before its next write. The next operation takes the lease again.
    #[error("wallet {id}: lease generation {generation} is no longer current; write refused")]
    LeaseLost {
        /// The wallet.
        id: WalletId,
        /// The generation this process had opened it under.
        generation: i64,
    },
    /// Delete was refused because the wallet still holds (or awaits) sats.
    #[error("wallet {id} still holds {sats} sats")]
    NotEmpty {
        /// The wallet.
        id: WalletId,
        /// Unspent, pending and reserved sats together.
        sats: u64,
    },
    /// The wallet's file does not exist.
    #[error("wallet {0} does not exist")]
    NotFound(WalletId),
    /// The mint or the wallet refused the operation.
    #[error(transparent)]
    Cdk(#[from] cdk::Error),
    /// The wallet's SQLite store failed.
    #[error("wallet store: {0}")]
    Store(#[from] cdk_common::database::Error),
    /// PostgreSQL (leases) failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Files could not be created or removed.
    #[error("wallet file: {0}")]
    Io(#[from] std::io::Error),
    /// Could not get blind auth tokens for a protected mint.
    #[error(transparent)]
    ServiceAuth(#[from] ServiceAuthError),
    /// The operation's task panicked or was cancelled at shutdown.
    #[error("wallet task failed: {0}")]
    Task(String),
    /// The record step of a send found its row changed by another run: that run owns the
    /// send, so this one reserved nothing and moved nothing.
    #[error("send superseded by another run")]
    Superseded,
    /// The wallet holds something that needs settling before the operation is safe (a locked
    /// send whose outcome is not known yet); the caller tries again later.
    #[error("wallet not settled: {0}")]
    Inconsistent(String),
}

/// What a client can do about a failed wallet operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalletErrorKind {
    /// The wallet, or what the operation touches, is in use elsewhere right now: ask again
    /// shortly (503 with Retry-After).
    Busy,
    /// The mint could not be reached or failed on its side: ask again later (503).
    MintUnavailable,
    /// The token was spent already (409).
    TokenSpent,
    /// The token is not one this wallet can take: malformed, for another mint or unit,
    /// failing its lock, signature or DLEQ checks, or worth nothing (400).
    TokenInvalid,
    /// Our side failed: storage, database, files, a task, our configuration, a bug (500).
    Internal,
}

impl WalletError {
    /// What a client can do about this failure.
    pub fn kind(&self) -> WalletErrorKind {
        match self {
            WalletError::Busy(_) | WalletError::LeaseLost { .. } => WalletErrorKind::Busy,
            WalletError::Cdk(e) | WalletError::ServiceAuth(ServiceAuthError::Cdk(e)) => cdk_kind(e),
            // The issuer would not give us a token: without it the mint will not serve us.
            WalletError::ServiceAuth(ServiceAuthError::Login(_)) => {
                WalletErrorKind::MintUnavailable
            }
            WalletError::ServiceAuth(ServiceAuthError::Store(_))
            | WalletError::NotEmpty { .. }
            | WalletError::NotFound(_)
            | WalletError::Store(_)
            | WalletError::Database(_)
            | WalletError::Io(_)
            | WalletError::Task(_)
            | WalletError::Superseded
            | WalletError::Inconsistent(_) => WalletErrorKind::Internal,
        }
    }
}

/// Sorts cdk's errors. A mint's NUT-00 error answer arrives already decoded into its variant
/// (`TokenAlreadySpent` for code 11001, `SignatureMissingOrInvalid` for 20008, ...); an answer
/// that is no NUT-00 error, or none at all, arrives as `HttpError` or `Timeout`. Variants not
/// named here are internal: they come from our own requests, state or configuration.
fn cdk_kind(e: &cdk::Error) -> WalletErrorKind {
    use cdk::Error as E;
    use WalletErrorKind as K;
    match e {
        E::TokenAlreadySpent => K::TokenSpent,
        // In flight in another request (a concurrent redeem of the same token): the next
        // answer is final.
        E::TokenPending | E::PendingQuote => K::Busy,

        E::HttpError(Some(408 | 429 | 500..), _) => K::MintUnavailable,
        // Any other status without a NUT-00 error (a proxy's page, a wrong path): our set-up.
        E::HttpError(Some(_), _) => K::Internal,
        E::HttpError(None, _)
        | E::Timeout
        | E::CouldNotGetMintInfo
        // An error code cdk does not know: mints answer their own failures with 50000.
        | E::UnknownErrorResponse(_)
        // The mint's answer did not check out (signature count, keyset, the DLEQ of what it
        // signed): nothing the client sent is at fault.
        | E::InvalidMintResponse(_)
        | E::CouldNotVerifyDleq
        | E::SubscriptionError(_)
        | E::MintingDisabled
        | E::PaymentFailed
        // The mint would not give us more blind auth tokens for now.
        | E::InsufficientBlindAuthTokens => K::MintUnavailable,

        // Decoding the token, and the checks `receive` makes before asking the mint.
        E::NUT00(_)
        | E::NUT02(_)
        | E::Secret(_)
        | E::UnsupportedUnit
        | E::IncorrectMint
        | E::MultiMintTokenNotSupported
        | E::KeysetUnknown(_)
        | E::UnknownKeySet
        | E::ExpiredKeyset
        | E::AmountKey
        | E::AmountOverflow
        | E::AmountUndefined
        | E::AmountError(amount::Error::AmountOverflow | amount::Error::AmountUndefined)
        // Its spending conditions (P2PK, HTLC) and its DLEQ proofs, checked locally.
        | E::NUT10(_)
        | E::NUT11(_)
        | E::NUT12(_)
        | E::NUT14(_)
        | E::P2PKConditionsNotMet(_)
        | E::DuplicateSignatureError
        | E::LocktimeNotProvided
        | E::InvalidSpendConditions(_)
        | E::PreimageNotProvided
        // What the mint says about the inputs (the token's proofs).
        | E::DHKE(dhke::Error::TokenNotVerified)
        | E::SignatureMissingOrInvalid
        | E::DuplicateInputs
        | E::MultipleUnits
        | E::UnitMismatch
        | E::MaxInputsExceeded { .. }
        | E::ProofContentTooLarge { .. } => K::TokenInvalid,
        _ => K::Internal,
    }
}

#[cfg(test)]
mod tests {
    use cdk::error::ErrorResponse;

    use super::*;

    /// What cdk's HTTP client makes of a mint's error answer with this NUT-00 code.
    fn answered(code: u16) -> cdk::Error {
        let body = format!(r#"{{"code":{code},"detail":"from the mint"}}"#);
        ErrorResponse::from_json(&body).expect("json").into()
    }

    fn kind(e: cdk::Error) -> WalletErrorKind {
        WalletError::Cdk(e).kind()
    }

    #[test]
    fn spent_tokens_are_a_conflict() {
        assert_eq!(
            kind(cdk::Error::TokenAlreadySpent),
            WalletErrorKind::TokenSpent
        );
        assert_eq!(kind(answered(11001)), WalletErrorKind::TokenSpent);
        assert!(matches!(answered(11001), cdk::Error::TokenAlreadySpent));
    }

    #[test]
    fn tokens_the_wallet_cannot_take_are_invalid() {
        use cdk::nuts::{nut00, nut11, nut12};
        for e in [
            cdk::Error::IncorrectMint,
            cdk::Error::UnsupportedUnit,
            cdk::Error::MultiMintTokenNotSupported,
            cdk::Error::NUT00(nut00::Error::ProofsRequired),
            cdk::Error::NUT00(nut00::Error::UnsupportedToken),
            cdk::Error::NUT11(nut11::Error::SpendConditionsNotMet),
            cdk::Error::NUT11(nut11::Error::SignaturesNotProvided),
            cdk::Error::NUT12(nut12::Error::InvalidDleqProof),
            cdk::Error::P2PKConditionsNotMet("no key".to_owned()),
            cdk::Error::AmountKey,
            cdk::Error::AmountError(cdk::amount::Error::AmountUndefined),
            cdk::Error::UnknownKeySet,
            // Proofs whose signatures do not verify, or whose witness is wrong, per the mint.
            answered(10001),
            answered(20008),
            answered(11007),
        ] {
            let shown = e.to_string();
            assert_eq!(kind(e), WalletErrorKind::TokenInvalid, "{shown}");
        }
    }

    #[test]
    fn an_unreachable_or_failing_mint_is_unavailable() {
        for e in [
            cdk::Error::HttpError(None, "connection refused".to_owned()),
            cdk::Error::HttpError(Some(502), "<html>bad gateway</html>".to_owned()),
            cdk::Error::HttpError(Some(503), "unavailable".to_owned()),
            cdk::Error::HttpError(Some(429), "slow down".to_owned()),
            cdk::Error::Timeout,
            cdk::Error::CouldNotGetMintInfo,
            cdk::Error::InvalidMintResponse("2 signatures for 1 output".to_owned()),
            cdk::Error::CouldNotVerifyDleq,
            // A mint's own failure (code 50000) and a code cdk does not know.
            answered(50000),
            answered(29999),
            answered(20003),
        ] {
            let shown = e.to_string();
            assert_eq!(kind(e), WalletErrorKind::MintUnavailable, "{shown}");
        }
        let login = WalletError::ServiceAuth(ServiceAuthError::Login("issuer down".to_owned()));
        assert_eq!(login.kind(), WalletErrorKind::MintUnavailable);
        let bats = WalletError::ServiceAuth(ServiceAuthError::Cdk(cdk::Error::Timeout));
        assert_eq!(bats.kind(), WalletErrorKind::MintUnavailable);
    }

    #[test]
    fn in_use_elsewhere_is_busy() {
        let id = WalletId::session(uuid::Uuid::nil());
        assert_eq!(WalletError::Busy(id.clone()).kind(), WalletErrorKind::Busy);
        let lost = WalletError::LeaseLost { id, generation: 3 };
        assert_eq!(lost.kind(), WalletErrorKind::Busy);
        assert_eq!(kind(cdk::Error::TokenPending), WalletErrorKind::Busy);
        assert_eq!(kind(answered(11002)), WalletErrorKind::Busy);
    }

    #[test]
    fn our_own_failures_are_internal() {
        let id = WalletId::session(uuid::Uuid::nil());
        for e in [
            WalletError::NotFound(id.clone()),
            WalletError::NotEmpty { id, sats: 3 },
            WalletError::Superseded,
            WalletError::Inconsistent("locked send unsettled".to_owned()),
            WalletError::Task("panicked".to_owned()),
            WalletError::Io(std::io::Error::other("disk full")),
            WalletError::Database(sqlx::Error::PoolTimedOut),
            WalletError::Store(cdk_common::database::Error::Internal("locked".to_owned())),
            WalletError::Cdk(cdk::Error::InsufficientFunds),
            WalletError::Cdk(cdk::Error::Custom("Saga not found".to_owned())),
            WalletError::Cdk(cdk::Error::BlindedMessageAlreadySigned),
            WalletError::Cdk(cdk::Error::MintTimeExceedsTolerance),
            WalletError::Cdk(cdk::Error::HttpError(Some(404), "not found".to_owned())),
            WalletError::Cdk(answered(11005)),
        ] {
            let shown = e.to_string();
            assert_eq!(e.kind(), WalletErrorKind::Internal, "{shown}");
        }
    }
}
