//! The maker's deposit arrived over Lightning: CREATED → INVOICE_PAID, listed for the lifetime
//! the maker chose. Called by [`super::paid`] inside the transaction that marks the quote
//! minted, with the offer row locked.

use sqlx::PgConnection;

use super::{TradeCtx, TradeError};
use crate::db::ledger::{self, LedgerKind};
use crate::db::offers::Offer;
use crate::db::quotes::WalletQuote;
use crate::domain::offer::OfferStatus;
use crate::domain::payout::FundedBy;

/// Books the deposit and funds the offer if it is the offer's quote, the right amount, and the
/// offer still waits for it. The new status, or `None` (the caller refunds the payment).
pub(crate) async fn apply(
    ctx: &TradeCtx,
    conn: &mut PgConnection,
    offer: &Offer,
    quote: &WalletQuote,
    sats: u64,
) -> Result<Option<OfferStatus>, TradeError> {
    ledger::record(conn, offer.id, LedgerKind::Deposit, sats, &quote.quote_id).await?;
    let right = Some(sats) == offer.amounts().deposit()
        && offer.deposit_quote_id.as_deref() == Some(quote.quote_id.as_str());
    if !right || offer.status != OfferStatus::Created {
        return Ok(None);
    }
    Ok(
        super::fund_receive::funded(ctx, conn, offer, FundedBy::Lightning)
            .await?
            .map(|o| o.status),
    )
}
