//! Keyset paging shared by every listing: a cursor is `<microseconds>_<uuid>` of the last row
//! of a page, opaque to clients.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::ApiError;

/// The cursor of a row created at `at` with id `id`.
pub fn cursor_of(at: DateTime<Utc>, id: Uuid) -> String {
    format!("{}_{}", at.timestamp_micros(), id.simple())
}

/// Parses a cursor this API returned; 400 `invalid_cursor` for anything else.
pub fn parse_cursor(c: &str) -> Result<(DateTime<Utc>, Uuid), ApiError> {
    let bad = || ApiError::bad_request("invalid_cursor", "cursor is not one this API returned");
    let (t, id) = c.split_once('_').ok_or_else(bad)?;
    // Exactly the form `cursor_of` writes (the schema's pattern), nothing looser.
    let digits = (1..=16).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit());
    let hex = id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !digits || !hex {
        return Err(bad());
    }
    let micros: i64 = t.parse().map_err(|_| bad())?;
    let at = DateTime::from_timestamp_micros(micros).ok_or_else(bad)?;
    Ok((at, Uuid::parse_str(id).map_err(|_| bad())?))
}

/// Keeps `limit` of `rows` (fetched with `limit + 1`) and the cursor of the last kept row when
/// there were more.
pub fn page<T>(
    mut rows: Vec<T>,
    limit: i64,
    cursor: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    let limit = usize::try_from(limit).unwrap_or(0);
    if rows.len() > limit {
        rows.truncate(limit);
        let next = rows.last().map(cursor);
        (rows, next)
    } else {
        (rows, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_strangers_are_refused() {
        let at = DateTime::from_timestamp_micros(1_700_000_000_123_456).expect("time");
        let id = Uuid::new_v4();
        assert_eq!(parse_cursor(&cursor_of(at, id)).expect("parse"), (at, id));
        let dashed = format!("12_{}", Uuid::new_v4().hyphenated());
        for bad in [
            "",
            "x_y",
            "12",
            "12_notauuid",
            "-1_00000000000000000000000000000000",
            &dashed,
        ] {
            assert_eq!(parse_cursor(bad).expect_err(bad).code, "invalid_cursor");
        }
    }

    #[test]
    fn a_page_keeps_its_limit_and_points_past_it() {
        let (rows, next) = page(vec![1, 2, 3], 2, |n| n.to_string());
        assert_eq!((rows, next.as_deref()), (vec![1, 2], Some("2")));
        let (rows, next) = page(vec![1, 2], 2, |n| n.to_string());
        assert_eq!((rows, next), (vec![1, 2], None));
    }
}
