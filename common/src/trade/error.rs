//! The one error type of the trade steps. Each variant means one thing to a client; the api
//! maps it to HTTP in one place (`api/src/error.rs`), the worker logs it and lets the job retry.

use super::access::Role;
use crate::domain::offer::OfferStatus;
use crate::jobs::EnqueueError;
use crate::wallet::WalletError;

/// Why a trade step did not happen.
#[derive(Debug, thiserror::Error)]
pub enum TradeError {
    /// No such offer, or one the caller may not see.
    #[error("no such offer")]
    NotFound,
    /// The caller sees the offer but is not the party this move needs.
    #[error("only the {0} may do this")]
    NotYours(Role),
    /// The offer's current status does not allow this move.
    #[error("not allowed while the offer is {0}")]
    WrongState(OfferStatus),
    /// The offer left the book (taken by another taker's bond, cancelled, expired).
    #[error("the offer is not available")]
    NotAvailable,
    /// The deadline of the offer's current state has passed: silence decided (or will, as soon
    /// as the lapse runs), so no party may move it any more.
    #[error("the deadline of this step has passed")]
    DeadlinePassed,
    /// The offer already has as many claims waiting for their bonds as it takes.
    #[error("{0} claims already wait for their bonds on this offer; try again later")]
    TooManyClaims(i64),
    /// The session holds as many invoices that can still be paid as it may.
    #[error("you hold {0} invoices that can still be paid; pay them or let them expire first")]
    TooManyPayableQuotes(i64),
    /// The session already holds a claim of this offer waiting for its bond.
    #[error("you already hold a claim of this offer; pay its bond (GET /offers/{{id}}/claim)")]
    AlreadyClaimed,
    /// The party already holds as many push subscriptions and webhooks as it may.
    #[error("at most {0} push subscriptions and webhooks per party of an offer")]
    TooManyTargets(i64),
    /// The session never claimed this offer.
    #[error("you have no claim on this offer")]
    NoClaim,
    /// A maker tried to claim its own offer.
    #[error("you cannot claim your own offer")]
    OwnOffer,
    /// The session already holds as many claims with an unpaid bond as it may.
    #[error("you hold {0} claim(s) with an unpaid bond; pay or let them lapse first")]
    TooManyUnpaidClaims(i64),
    /// The session let its claim of this offer lapse unpaid a short while ago.
    #[error("your claim of this offer lapsed unpaid; you may claim it again in {0} s")]
    ClaimCooldown(u64),
    /// The session already has as many open offers as it may.
    #[error("you have {0} open offer(s); wait until one is under way or ended")]
    TooManyOpenOffers(i64),
    /// The input is unusable; `code` is the stable error code, `field` the input concerned.
    #[error("{field}: {message}")]
    Invalid {
        /// Stable error code.
        code: &'static str,
        /// The input field (wire name).
        field: &'static str,
        /// What is wrong, safe to show the caller.
        message: String,
    },
    /// An upload is larger than allowed.
    #[error("{field} is larger than {max} bytes")]
    TooLarge {
        /// Stable error code.
        code: &'static str,
        /// The input field.
        field: &'static str,
        /// The limit.
        max: usize,
    },
    /// No such funding intent of this offer.
    #[error("no such funding intent")]
    NoFundIntent,
    /// A funding token was received but could not fund the offer; it is being refunded.
    #[error("the offer could not be funded; the token's value is refunded to your payout key")]
    NotFundable,
    /// An upload is not a PNG, JPEG or WebP image.
    #[error("the image must be a PNG, JPEG or WebP image")]
    NotAnImage,
    /// The offer has no dispute (or no such evidence).
    #[error("no such dispute")]
    NoDispute,
    /// The receipt or evidence asked for was deleted with the rest of the offer's trade data,
    /// `RETENTION_TRADE_DATA_DAYS` after the offer became final.
    #[error("deleted after the retention period, with the offer's other trade data")]
    TradeDataDeleted,
    /// A reveal by a key that may not reveal (unregistered or deactivated).
    #[error("{0}")]
    RevealRefused(&'static str),
    /// A reputation token that was staked before.
    #[error("a reputation token was already staked")]
    TokenStaked,
    /// The mint did not answer this process' last check: what needs it is refused before it
    /// starts, rather than after a timeout and half a move.
    #[error("the mint cannot be reached")]
    MintUnavailable,
    /// No usable fiat price right now.
    #[error("no current price: {0}")]
    PriceUnavailable(String),
    /// The wallet or the mint failed (see [`WalletError::kind`] for what it means to a client).
    #[error(transparent)]
    Wallet(#[from] WalletError),
    /// PostgreSQL failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A follow-up job could not be enqueued.
    #[error(transparent)]
    Enqueue(#[from] EnqueueError),
    /// Stored trade data cannot be opened: its `DATA_SECRETS` key was dropped, or the row was
    /// changed (never the caller's fault).
    #[error(transparent)]
    SealedData(#[from] crate::keyring::data::DataKeyError),
    /// Our own records contradict each other (a bug, never the caller's fault).
    #[error("inconsistent records: {0}")]
    Inconsistent(String),
    /// A step that needs session wallets or the workers' keys ran in a process without them
    /// (the api): a bug in where the step is called, never the caller's fault.
    #[error("this process holds no wallets: the step belongs to a worker")]
    NoWallets,
}

impl TradeError {
    /// Bad input in `field`.
    pub fn invalid(code: &'static str, field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            code,
            field,
            message: message.into(),
        }
    }
}
