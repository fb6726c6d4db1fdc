//! The repository edge for the domain's text enums: each is a PostgreSQL `text` column, encoded
//! with its `as_str` and decoded with its `FromStr`. A stored value the enum does not know fails
//! the decode (the query errors); nothing falls back to a default.

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef};
use sqlx::{Decode, Encode, Postgres, Type};

use crate::domain::claim::ClaimStatus;
use crate::domain::dispute::{
    Author, DisputeKind, DisputeStage, IssueReason, MessageKind, Resolution, ResolvedBy,
};
use crate::domain::money::{Outcome, Party};
use crate::domain::offer::OfferStatus;
use crate::domain::payout::{FundedBy, PayoutPurpose, PayoutState, QuotePurpose, QuoteState};
use crate::domain::role::Role;

macro_rules! text_column {
    ($($ty:ty),+ $(,)?) => {$(
        impl Type<Postgres> for $ty {
            fn type_info() -> PgTypeInfo {
                <&str as Type<Postgres>>::type_info()
            }

            fn compatible(ty: &PgTypeInfo) -> bool {
                <&str as Type<Postgres>>::compatible(ty)
            }
        }

        impl Encode<'_, Postgres> for $ty {
            fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
                <&str as Encode<Postgres>>::encode(self.as_str(), buf)
            }
        }

        impl<'r> Decode<'r, Postgres> for $ty {
            fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
                let text = <&str as Decode<Postgres>>::decode(value)?;
                Ok(text.parse::<$ty>()?)
            }
        }
    )+};
}

text_column!(
    OfferStatus,
    Outcome,
    Party,
    PayoutPurpose,
    PayoutState,
    QuotePurpose,
    QuoteState,
    FundedBy,
    Role,
    IssueReason,
    DisputeStage,
    Resolution,
    ResolvedBy,
    Author,
    MessageKind,
    DisputeKind,
    ClaimStatus,
);
