//! One module per OpenAPI tag.

pub mod admin_offers;
pub mod events;
pub mod invites;
pub mod meta;
pub mod offers;
pub mod providers;
pub mod sessions;
pub mod users;

use poem_openapi::Tags;

/// The API's tags, in the order the docs show them.
#[derive(Debug, Tags)]
pub enum ApiTags {
    /// Platform facts: fees, bonds, limits, timers.
    Meta,
    /// Invite codes.
    Invites,
    /// Registration.
    Users,
    /// Anonymous sessions opened with blind auth tokens.
    Sessions,
    /// Offers: the book and the trade.
    Offers,
    /// Fiat payment providers.
    Providers,
    /// Live updates (server-sent events).
    Events,
    /// Administration (admin listener only).
    Admin,
}
