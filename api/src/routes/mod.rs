//! One module per OpenAPI tag.

pub mod admin_disputes;
pub mod admin_offers;
pub mod admin_treasury;
pub mod dispute_views;
pub mod disputes;
pub mod events;
pub mod invites;
pub mod meta;
pub mod notify;
pub mod offers;
pub mod paging;
pub mod providers;
pub mod reputation;
pub mod sessions;
pub mod users;

use openpleb_common::db::admin_actions;
use poem_openapi::Tags;

use crate::error::ApiError;
use crate::AppState;

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
    /// Disputes: marking an issue, answering it, evidence. Raising an issue or disputing
    /// reveals your registered key.
    Disputes,
    /// Fiat payment providers.
    Providers,
    /// Reputation tokens: blind-signed, unlinkable, earned and staked.
    Reputation,
    /// Live updates (server-sent events).
    Events,
    /// Administration (admin listener only).
    Admin,
}

/// Records an admin write in the append-only `admin_actions` once it succeeded.
pub async fn audit(
    state: &AppState,
    admin: &str,
    action: &str,
    target: impl std::fmt::Display,
    note: Option<&str>,
) -> Result<(), ApiError> {
    let mut conn = state.ctx.pool.acquire().await?;
    admin_actions::record(&mut conn, admin, action, &target.to_string(), note).await?;
    Ok(())
}
