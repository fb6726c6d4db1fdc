//! One module per OpenAPI tag.

pub mod meta;

use poem_openapi::Tags;

/// The API's tags, in the order the docs show them.
#[derive(Debug, Tags)]
pub enum ApiTags {
    /// Platform facts: fees, bonds, limits, timers.
    Meta,
}
