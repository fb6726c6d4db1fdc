//! Money math: whole sats, fee and bond rules, all integer arithmetic.
//!
//! Percentages are held in basis points (1 % = 100 bps) so `ceil(S * pct) + flat` never touches
//! a float. See DESIGN.md section 4 for the table these rules feed.

use std::fmt;
use std::str::FromStr;

use super::text_enum::text_enum;

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

/// Sats per bitcoin.
pub const SATS_PER_BTC: u128 = 100_000_000;

/// Converts a fiat amount to sats at a price (fiat minor units per bitcoin), rounding up so the
/// taker is never short; `None` for a zero price or an overflow.
pub fn sats_for_fiat(fiat_minor: u64, price_minor_per_btc: u64) -> Option<u64> {
    if price_minor_per_btc == 0 {
        return None;
    }
    let sats = (u128::from(fiat_minor) * SATS_PER_BTC).div_ceil(u128::from(price_minor_per_btc));
    u64::try_from(sats).ok()
}

/// The fee and bond rules frozen onto an offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeeRules {
    /// Kept by the platform on completion.
    pub platform_fee: FeeRule,
    /// Paid by the maker to the taker on completion.
    pub taker_reward: FeeRule,
    /// Maker's bond.
    pub maker_bond: FeeRule,
    /// Taker's bond.
    pub taker_bond: FeeRule,
}

/// An offer's amounts in sats, frozen at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfferAmounts {
    /// S: the escrow (the fiat's worth).
    pub escrow: u64,
    /// PF: platform fee.
    pub platform_fee: u64,
    /// TF: taker reward.
    pub taker_reward: u64,
    /// MB: maker bond.
    pub maker_bond: u64,
    /// TB: taker bond.
    pub taker_bond: u64,
}

impl OfferAmounts {
    /// Fees and bonds for an escrow of `escrow` sats; `None` when the total would not fit a
    /// signed 64-bit column.
    pub fn new(escrow: u64, rules: &FeeRules) -> Option<Self> {
        let a = Self {
            escrow,
            platform_fee: rules.platform_fee.apply(escrow)?,
            taker_reward: rules.taker_reward.apply(escrow)?,
            maker_bond: rules.maker_bond.apply(escrow)?,
            taker_bond: rules.taker_bond.apply(escrow)?,
        };
        let total = a.deposit()?.checked_add(a.taker_bond)?;
        (i64::try_from(total).is_ok()).then_some(a)
    }

    /// D = S + PF + TF + MB: what the maker deposits.
    pub fn deposit(&self) -> Option<u64> {
        self.escrow
            .checked_add(self.platform_fee)?
            .checked_add(self.taker_reward)?
            .checked_add(self.maker_bond)
    }
}

text_enum! {
    /// How a trade ended, for the money table.
    pub enum Outcome {
        /// COMPLETED (confirmed, or maker silence).
        Completed => "COMPLETED",
        /// EXPIRED or CANCELLED before the taker's bond was paid.
        RefundMaker => "REFUND_MAKER",
        /// EXPIRED in TAKER_BOND_PAID, taker forfeit, or MAKER_WINS: the taker's bond goes to
        /// the maker.
        MakerWins => "MAKER_WINS",
        /// TAKER_WINS, including a maker forfeiting the dispute.
        TakerWins => "TAKER_WINS",
        /// RETURN: nobody at fault; everyone gets their own back.
        Return => "RETURN",
        /// SPLIT: the pot (everything but the platform fee) halved; an odd sat goes to the
        /// taker.
        Split => "SPLIT",
        /// BAD_DETAILS: the maker's payment details did not work (its forfeit, or an admin's
        /// finding), so no fiat could move: the maker gets its deposit back less its bond,
        /// which compensates the taker beside its own bond.
        BadDetails => "BAD_DETAILS",
    }
}

/// Who gets what, in sats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Payouts {
    /// To the maker's payout key.
    pub maker: u64,
    /// To the taker's payout key.
    pub taker: u64,
    /// Kept by the platform.
    pub platform: u64,
}

impl Payouts {
    /// Everything paid out or kept.
    pub fn total(&self) -> u64 {
        self.maker + self.taker + self.platform
    }
}

/// The money table of DESIGN.md section 4. Amounts were checked for overflow when the offer
/// was created ([`OfferAmounts::new`]), so plain sums are safe here.
pub fn payouts(outcome: Outcome, a: &OfferAmounts) -> Payouts {
    let d = a.escrow + a.platform_fee + a.taker_reward + a.maker_bond;
    match outcome {
        Outcome::Completed => Payouts {
            maker: a.maker_bond,
            taker: a.escrow + a.taker_reward + a.taker_bond,
            platform: a.platform_fee,
        },
        Outcome::RefundMaker => Payouts {
            maker: d,
            ..Payouts::default()
        },
        Outcome::MakerWins => Payouts {
            maker: d + a.taker_bond,
            ..Payouts::default()
        },
        Outcome::TakerWins => Payouts {
            maker: 0,
            taker: a.escrow + a.taker_reward + a.taker_bond + a.maker_bond,
            platform: a.platform_fee,
        },
        Outcome::Return => Payouts {
            maker: d,
            taker: a.taker_bond,
            platform: 0,
        },
        Outcome::Split => {
            let pot = d + a.taker_bond - a.platform_fee;
            Payouts {
                maker: pot / 2,
                taker: pot - pot / 2,
                platform: a.platform_fee,
            }
        }
        // No trade happened, so no fee: the operator never profits from a penalty.
        Outcome::BadDetails => Payouts {
            maker: d - a.maker_bond,
            taker: a.taker_bond + a.maker_bond,
            platform: 0,
        },
    }
}

text_enum! {
    /// Who receives a payout.
    pub enum Party {
        /// The maker's payout key.
        Maker => "maker",
        /// The taker's payout key.
        Taker => "taker",
        /// The platform treasury.
        Platform => "platform",
    }
}

/// Which session wallet a payout is paid from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The maker's session wallet (holds the deposit).
    MakerWallet,
    /// The taker's session wallet (holds the bond).
    TakerWallet,
}

/// One payout from one wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocation {
    /// Recipient.
    pub party: Party,
    /// Paying wallet.
    pub source: Source,
    /// Sats.
    pub sats: u64,
}

/// Splits `p` over the two wallets holding `in_maker` and `in_taker` sats: each party draws from
/// its own side first (the platform from the maker's), so most payouts are a single token.
/// `None` when the wallets cannot cover the payouts.
pub fn allocate(p: &Payouts, in_maker: u64, in_taker: u64) -> Option<Vec<Allocation>> {
    let mut left = [in_maker, in_taker];
    let mut out = Vec::new();
    let order = [
        (
            Party::Platform,
            p.platform,
            [Source::MakerWallet, Source::TakerWallet],
        ),
        (
            Party::Taker,
            p.taker,
            [Source::TakerWallet, Source::MakerWallet],
        ),
        (
            Party::Maker,
            p.maker,
            [Source::MakerWallet, Source::TakerWallet],
        ),
    ];
    for (party, mut owed, sources) in order {
        for source in sources {
            let slot = match source {
                Source::MakerWallet => &mut left[0],
                Source::TakerWallet => &mut left[1],
            };
            let take = owed.min(*slot);
            if take > 0 {
                *slot -= take;
                owed -= take;
                out.push(Allocation {
                    party,
                    source,
                    sats: take,
                });
            }
        }
        if owed > 0 {
            return None;
        }
    }
    Some(out)
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

    fn rules() -> FeeRules {
        FeeRules {
            platform_fee: FeeRule {
                bps: 100,
                flat_sats: 100,
            },
            taker_reward: FeeRule {
                bps: 200,
                flat_sats: 100,
            },
            maker_bond: FeeRule {
                bps: 1000,
                flat_sats: 500,
            },
            taker_bond: FeeRule {
                bps: 1000,
                flat_sats: 500,
            },
        }
    }

    #[test]
    fn fiat_converts_rounding_up() {
        // 50.00 EUR at 50,000.00 EUR/BTC is 0.001 BTC.
        assert_eq!(sats_for_fiat(5_000, 5_000_000), Some(100_000));
        // 0.01 EUR at 60,000 EUR/BTC is 16.67 sats: rounded up.
        assert_eq!(sats_for_fiat(1, 6_000_000), Some(17));
        assert_eq!(sats_for_fiat(1, 0), None);
    }

    #[test]
    fn upstream_example_amounts() {
        let a = OfferAmounts::new(100_000, &rules()).expect("amounts");
        assert_eq!(a.platform_fee, 1_100);
        assert_eq!(a.taker_reward, 2_100);
        assert_eq!(a.maker_bond, 10_500);
        assert_eq!(a.taker_bond, 10_500);
        assert_eq!(a.deposit(), Some(113_700));
    }

    #[test]
    fn every_outcome_pays_out_exactly_what_came_in() {
        for escrow in [1u64, 2, 999, 100_000, 12_345_677, 2_100_000_000_000_000] {
            let a = OfferAmounts::new(escrow, &rules()).expect("amounts");
            let d = a.deposit().expect("deposit");
            let both = d + a.taker_bond;
            let cases = [
                (Outcome::Completed, both),
                (Outcome::RefundMaker, d),
                (Outcome::MakerWins, both),
                (Outcome::TakerWins, both),
                (Outcome::Return, both),
                (Outcome::Split, both),
                (Outcome::BadDetails, both),
            ];
            for (outcome, sats_in) in cases {
                let p = payouts(outcome, &a);
                assert_eq!(p.total(), sats_in, "{outcome:?} at {escrow}");
            }
        }
    }

    #[test]
    fn the_operator_never_profits_from_penalties() {
        let a = OfferAmounts::new(100_000, &rules()).expect("amounts");
        for o in [
            Outcome::RefundMaker,
            Outcome::MakerWins,
            Outcome::Return,
            Outcome::BadDetails,
        ] {
            assert_eq!(payouts(o, &a).platform, 0, "{o:?}");
        }
        let bad = payouts(Outcome::BadDetails, &a);
        assert_eq!(bad.taker, a.taker_bond + a.maker_bond);
        assert_eq!(bad.maker, a.escrow + a.platform_fee + a.taker_reward);
        assert_eq!(payouts(Outcome::Completed, &a).platform, a.platform_fee);
        let completed = payouts(Outcome::Completed, &a);
        assert_eq!(completed.taker, 100_000 + 2_100 + 10_500);
        assert_eq!(completed.maker, 10_500);
    }

    #[test]
    fn completed_pays_the_taker_bond_back_from_the_taker_wallet() {
        let a = OfferAmounts::new(100_000, &rules()).expect("amounts");
        let d = a.deposit().expect("d");
        let alloc = allocate(&payouts(Outcome::Completed, &a), d, a.taker_bond).expect("alloc");
        assert_eq!(
            alloc,
            vec![
                Allocation {
                    party: Party::Platform,
                    source: Source::MakerWallet,
                    sats: 1_100
                },
                Allocation {
                    party: Party::Taker,
                    source: Source::TakerWallet,
                    sats: 10_500
                },
                Allocation {
                    party: Party::Taker,
                    source: Source::MakerWallet,
                    sats: 102_100
                },
                Allocation {
                    party: Party::Maker,
                    source: Source::MakerWallet,
                    sats: 10_500
                },
            ]
        );
    }

    #[test]
    fn allocations_drain_both_wallets_exactly() {
        let a = OfferAmounts::new(54_321, &rules()).expect("amounts");
        let d = a.deposit().expect("d");
        for (o, tb) in [
            (Outcome::Completed, a.taker_bond),
            (Outcome::MakerWins, a.taker_bond),
            (Outcome::TakerWins, a.taker_bond),
            (Outcome::Return, a.taker_bond),
            (Outcome::Split, a.taker_bond),
            (Outcome::RefundMaker, 0),
        ] {
            let alloc = allocate(&payouts(o, &a), d, tb).expect("alloc");
            let from_maker: u64 = alloc
                .iter()
                .filter(|x| x.source == Source::MakerWallet)
                .map(|x| x.sats)
                .sum();
            let from_taker: u64 = alloc
                .iter()
                .filter(|x| x.source == Source::TakerWallet)
                .map(|x| x.sats)
                .sum();
            assert_eq!((from_maker, from_taker), (d, tb), "{o:?}");
        }
        assert_eq!(allocate(&payouts(Outcome::Completed, &a), d, 0), None);
    }

    #[test]
    fn overflowing_offers_are_refused() {
        assert_eq!(OfferAmounts::new(u64::MAX / 2, &rules()), None);
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
