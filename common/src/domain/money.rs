//! Money math: whole sats, fee and bond rules, all integer arithmetic.
//!
//! Percentages are held in basis points (1 % = 100 bps) so `ceil(S * pct) + flat` never touches
//! a float. See DESIGN.md section 4 for the table these rules feed.

use std::fmt;
use std::str::FromStr;

/// A fee or bond rule: `ceil(amount * bps / 10_000) + flat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeeRule {
    /// Proportional part, in basis points of the escrow amount.
    pub bps: u32,
    /// Flat part, in sats.
    pub flat_sats: u64,
}

impl FeeRule {
    /// The charge on an escrow of `sats`, rounded up; `None` on overflow.
    pub fn apply(&self, sats: u64) -> Option<u64> {
        let product = u128::from(sats) * u128::from(self.bps);
        let proportional = product.div_ceil(10_000);
        u64::try_from(proportional)
            .ok()?
            .checked_add(self.flat_sats)
    }
}

/// A percentage written as text (`"1"`, `"0.5"`, `"2.25"`), parsed into basis points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BasisPoints(pub u32);

/// Why a percentage string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PercentError;

impl fmt::Display for PercentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("expected a percentage between 0 and 100 with at most two decimals")
    }
}

impl std::error::Error for PercentError {}

impl FromStr for BasisPoints {
    type Err = PercentError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
        if whole.is_empty()
            || frac.len() > 2
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(PercentError);
        }
        let whole: u32 = whole.parse().map_err(|_| PercentError)?;
        let frac: u32 = format!("{frac:0<2}").parse().map_err(|_| PercentError)?;
        let bps = whole
            .checked_mul(100)
            .and_then(|w| w.checked_add(frac))
            .ok_or(PercentError)?;
        if bps > 10_000 {
            return Err(PercentError);
        }
        Ok(Self(bps))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fee_rounds_up_and_adds_flat() {
        let platform = FeeRule {
            bps: 100,
            flat_sats: 100,
        };
        assert_eq!(platform.apply(10_000), Some(200));
        assert_eq!(platform.apply(10_001), Some(201));
        assert_eq!(platform.apply(0), Some(100));
    }

    #[test]
    fn fee_overflow_is_none() {
        let rule = FeeRule {
            bps: 10_000,
            flat_sats: 1,
        };
        assert_eq!(rule.apply(u64::MAX), None);
    }

    #[test]
    fn percentages_parse_to_basis_points() {
        assert_eq!("1".parse(), Ok(BasisPoints(100)));
        assert_eq!("0.5".parse(), Ok(BasisPoints(50)));
        assert_eq!("2.25".parse(), Ok(BasisPoints(225)));
        assert_eq!("100".parse(), Ok(BasisPoints(10_000)));
        for bad in ["", "-1", "1.234", "abc", "100.01", ".5", "1e2"] {
            assert_eq!(bad.parse::<BasisPoints>(), Err(PercentError), "{bad}");
        }
    }
}
