//! Who is looking at an offer and what they may see or do (DESIGN.md section 2: anonymous
//! callers and other sessions see public offers only; a claimed offer is its parties' and the
//! admins' business).

use uuid::Uuid;

use super::{TradeCtx, TradeError};
use crate::db::offers::{self, Offer};
pub use crate::domain::role::Role;
use crate::keyring::data::Field;

/// Who is looking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    /// No session, or a session that is not a party.
    Public,
    /// One of the parties.
    Party(Role),
    /// An admin.
    Admin,
}

impl Viewer {
    /// The viewer `session` is for `offer`.
    pub fn of(offer: &Offer, session: Option<Uuid>) -> Self {
        match session {
            Some(s) if s == offer.maker_session_id => Self::Party(Role::Maker),
            Some(s) if Some(s) == offer.taker_session_id => Self::Party(Role::Taker),
            _ => Self::Public,
        }
    }

    /// May this viewer see the offer at all?
    pub fn can_see(self, offer: &Offer) -> bool {
        match self {
            Self::Public => offer.status.is_public(),
            Self::Party(_) | Self::Admin => true,
        }
    }

    /// The party this viewer is, if any.
    pub fn role(self) -> Option<Role> {
        match self {
            Self::Party(r) => Some(r),
            Self::Public | Self::Admin => None,
        }
    }
}

/// Loads an offer, or [`TradeError::NotFound`]; its payment details opened.
pub async fn load(ctx: &TradeCtx, id: Uuid) -> Result<Offer, TradeError> {
    let mut offer = offers::get(&ctx.pool, id)
        .await?
        .ok_or(TradeError::NotFound)?;
    if let Some(sealed) = offer.payment_details_sealed.take() {
        let details = ctx.config.data.open_text(
            offer.data_key_id,
            offer.id,
            Field::PaymentDetails,
            &sealed,
        )?;
        offer.payment_details = Some(details);
    }
    Ok(offer)
}

/// Loads an offer `session` may see, or [`TradeError::NotFound`] (others' hidden offers stay
/// unknown).
pub async fn load_visible(
    ctx: &TradeCtx,
    id: Uuid,
    session: Option<Uuid>,
) -> Result<(Offer, Viewer), TradeError> {
    let offer = load(ctx, id).await?;
    let viewer = Viewer::of(&offer, session);
    if !viewer.can_see(&offer) {
        return Err(TradeError::NotFound);
    }
    Ok((offer, viewer))
}

/// Loads an offer `session` may act on as `role`: [`TradeError::NotYours`] when it can see the
/// offer but is not that party, [`TradeError::NotFound`] when it cannot see it.
pub async fn load_as(
    ctx: &TradeCtx,
    id: Uuid,
    session: Uuid,
    role: Role,
) -> Result<Offer, TradeError> {
    let (offer, viewer) = load_visible(ctx, id, Some(session)).await?;
    if viewer == Viewer::Party(role) {
        Ok(offer)
    } else {
        Err(TradeError::NotYours(role))
    }
}
