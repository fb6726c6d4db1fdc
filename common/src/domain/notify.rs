//! What a party is told, and when: every state entry that asks something of a party or tells
//! it its money moved becomes a notice to that party, and every deadline at which silence
//! decides against a party is preceded by reminders. A notice carries only what a client needs
//! to act (the offer, its status, the deadline, the action expected): never amounts, payment
//! details, receipts or keys. Pure.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::offer::OfferStatus;
use super::role::Role;
use super::text_enum::text_enum;

text_enum! {
    /// What the notified party is expected to do next.
    pub enum Action {
        /// Nothing: the notice tells what happened.
        None => "none",
        /// Pay the fiat and send the receipt before the deadline (taker).
        PayFiatAndSendReceipt => "pay_fiat_and_send_receipt",
        /// The taker's bond is paid: the fiat is on its way (maker).
        AwaitFiat => "await_fiat",
        /// Confirm the fiat arrived or mark an issue before the deadline; silence is consent
        /// (maker).
        ConfirmOrMarkIssue => "confirm_or_mark_issue",
        /// Forfeit or dispute before the deadline; silence is a forfeit (taker).
        ForfeitOrDispute => "forfeit_or_dispute",
        /// Forfeit or counter before the deadline; silence leaves it to an admin (maker).
        ForfeitOrCounter => "forfeit_or_counter",
        /// An admin decides.
        AwaitAdmin => "await_admin",
        /// A payout is released: fetch it.
        FetchPayout => "fetch_payout",
    }
}

/// The closed schema of every notice, as pushed and posted: nothing else is ever sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Notice {
    /// The offer.
    pub offer_id: uuid::Uuid,
    /// The offer's status, or a claim's end (`CLAIM_LOST`, `CLAIM_LAPSED`).
    pub status: String,
    /// When silence decides, if it does.
    pub deadline: Option<DateTime<Utc>>,
    /// What the party is expected to do.
    pub action: String,
}

/// Who is told what when an offer enters `to` (from `from`).
pub fn on_entry(from: Option<OfferStatus>, to: OfferStatus) -> Vec<(Role, Action)> {
    use OfferStatus as S;
    match (from, to) {
        (Some(S::InvoicePaid), S::TakerBondPaid) => vec![
            (Role::Maker, Action::AwaitFiat),
            (Role::Taker, Action::PayFiatAndSendReceipt),
        ],
        (_, S::ReceiptSubmitted) => vec![(Role::Maker, Action::ConfirmOrMarkIssue)],
        (_, S::MarkedWithIssue) => vec![(Role::Taker, Action::ForfeitOrDispute)],
        (Some(S::MarkedWithIssue), S::Disputed) | (Some(S::TakerBondPaid), S::DetailsDisputed) => {
            vec![(Role::Maker, Action::ForfeitOrCounter)]
        }
        // A counter, or the maker's silence: the dispute waits for an admin.
        (Some(S::Disputed), S::Disputed) | (Some(S::DetailsDisputed), S::DetailsDisputed) => vec![
            (Role::Maker, Action::AwaitAdmin),
            (Role::Taker, Action::AwaitAdmin),
        ],
        // The trade ended with a taker: both are told (their payouts follow).
        (
            Some(
                S::TakerBondPaid
                | S::ReceiptSubmitted
                | S::MarkedWithIssue
                | S::Disputed
                | S::DetailsDisputed,
            ),
            S::Completed | S::Resolved | S::Expired,
        ) => vec![(Role::Maker, Action::None), (Role::Taker, Action::None)],
        // The listing ended unclaimed: the deposit comes back.
        (Some(S::InvoicePaid), S::Expired) => vec![(Role::Maker, Action::None)],
        _ => Vec::new(),
    }
}

/// The party whose silence decides against it when `status` (entered from `from`) reaches its
/// deadline, and so is reminded before it.
pub fn reminded(from: Option<OfferStatus>, status: OfferStatus) -> Option<Role> {
    use OfferStatus as S;
    match (from, status) {
        (_, S::TakerBondPaid | S::MarkedWithIssue) => Some(Role::Taker),
        (_, S::ReceiptSubmitted) => Some(Role::Maker),
        (Some(S::MarkedWithIssue), S::Disputed) | (Some(S::TakerBondPaid), S::DetailsDisputed) => {
            Some(Role::Maker)
        }
        _ => None,
    }
}

/// What a reminder in `status` asks of its party (see [`reminded`]).
pub fn reminder_action(status: OfferStatus) -> Action {
    use OfferStatus as S;
    match status {
        S::TakerBondPaid => Action::PayFiatAndSendReceipt,
        S::ReceiptSubmitted => Action::ConfirmOrMarkIssue,
        S::MarkedWithIssue => Action::ForfeitOrDispute,
        S::Disputed | S::DetailsDisputed => Action::ForfeitOrCounter,
        _ => Action::None,
    }
}

/// One offset of `NOTIFY_REMIND_BEFORE`: a reminder this long before the deadline, or this
/// share of the state's timer before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemindBefore {
    /// A fixed time before the deadline.
    Fixed(Duration),
    /// This percentage of the timer before the deadline (1-99).
    Percent(u8),
}

/// Why a `NOTIFY_REMIND_BEFORE` list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected offsets like `15m,50%` (s, m or h; or a percentage 1-99), got `{0}`")]
pub struct BadOffset(pub String);

/// Parses `15m,50%,30s` (empty: no reminders).
pub fn parse_remind_before(s: &str) -> Result<Vec<RemindBefore>, BadOffset> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let bad = || BadOffset(p.to_owned());
            if let Some(pct) = p.strip_suffix('%') {
                let n: u8 = pct.parse().map_err(|_| bad())?;
                return (1..=99)
                    .contains(&n)
                    .then_some(RemindBefore::Percent(n))
                    .ok_or_else(bad);
            }
            let (num, unit) = p.split_at(p.len().saturating_sub(1));
            let n: u64 = num.parse().map_err(|_| bad())?;
            let secs = match unit {
                "s" => n,
                "m" => n.checked_mul(60).ok_or_else(bad)?,
                "h" => n.checked_mul(3600).ok_or_else(bad)?,
                _ => return Err(bad()),
            };
            if secs == 0 {
                return Err(bad());
            }
            Ok(RemindBefore::Fixed(Duration::from_secs(secs)))
        })
        .collect()
}

/// How long before the deadline each reminder of a state with `timer` goes out, longest
/// first; offsets as long as the timer or longer are skipped (the party was just told).
pub fn reminder_offsets(timer: Duration, offsets: &[RemindBefore]) -> Vec<Duration> {
    let mut out: Vec<Duration> = offsets
        .iter()
        .map(|o| match o {
            RemindBefore::Fixed(d) => *d,
            RemindBefore::Percent(p) => timer.mul_f64(f64::from(*p) / 100.0),
        })
        .filter(|d| !d.is_zero() && *d < timer)
        .collect();
    out.sort_unstable_by(|a, b| b.cmp(a));
    out.dedup();
    out
}

/// The `Topic` header of an offer's notices: base64url of its 16 bytes (22 characters, within
/// the 32 URL-safe characters RFC 8030 allows), so a newer notice replaces an older one at
/// the push service.
pub fn topic(offer: uuid::Uuid) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(offer.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use OfferStatus as S;

    #[test]
    fn a_paid_bond_tells_both_and_a_claim_nobody() {
        assert_eq!(
            on_entry(Some(S::InvoicePaid), S::TakerBondPaid),
            vec![
                (Role::Maker, Action::AwaitFiat),
                (Role::Taker, Action::PayFiatAndSendReceipt)
            ]
        );
        assert!(on_entry(Some(S::Created), S::InvoicePaid).is_empty());
        assert!(on_entry(None, S::Created).is_empty());
    }

    #[test]
    fn whoever_silence_decides_against_is_told_and_reminded() {
        assert_eq!(
            on_entry(Some(S::TakerBondPaid), S::ReceiptSubmitted),
            vec![(Role::Maker, Action::ConfirmOrMarkIssue)]
        );
        assert_eq!(
            reminded(Some(S::TakerBondPaid), S::ReceiptSubmitted),
            Some(Role::Maker)
        );
        assert_eq!(
            reminded(Some(S::ReceiptSubmitted), S::MarkedWithIssue),
            Some(Role::Taker)
        );
        assert_eq!(
            reminded(Some(S::MarkedWithIssue), S::Disputed),
            Some(Role::Maker)
        );
        // Waiting for an admin: nobody's silence decides.
        assert_eq!(reminded(Some(S::Disputed), S::Disputed), None);
        assert_eq!(reminded(Some(S::InvoicePaid), S::Expired), None);
    }

    #[test]
    fn offsets_parse_and_skip_what_the_timer_cannot_hold() {
        let o = parse_remind_before("15m,50%").expect("parses");
        assert_eq!(
            o,
            vec![
                RemindBefore::Fixed(Duration::from_secs(900)),
                RemindBefore::Percent(50)
            ]
        );
        assert_eq!(
            reminder_offsets(Duration::from_secs(3600), &o),
            vec![Duration::from_secs(1800), Duration::from_secs(900)]
        );
        // A 10-minute timer: 15 minutes before is skipped, half of it is kept.
        assert_eq!(
            reminder_offsets(Duration::from_secs(600), &o),
            vec![Duration::from_secs(300)]
        );
        assert_eq!(parse_remind_before("").expect("empty"), vec![]);
        for bad in ["15", "0m", "100%", "x%", "5d"] {
            assert!(parse_remind_before(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_topic_fits_rfc_8030() {
        let t = topic(uuid::Uuid::new_v4());
        assert_eq!(t.len(), 22);
        assert!(t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }

    #[test]
    fn a_notice_has_four_fields_and_no_more() {
        let n = Notice {
            offer_id: uuid::Uuid::nil(),
            status: "RECEIPT_SUBMITTED".to_owned(),
            deadline: None,
            action: Action::ConfirmOrMarkIssue.as_str().to_owned(),
        };
        let v = serde_json::to_value(&n).expect("json");
        let keys: Vec<_> = v.as_object().expect("object").keys().cloned().collect();
        assert_eq!(keys, ["action", "deadline", "offerId", "status"]);
        let extra = serde_json::json!({"offerId": uuid::Uuid::nil(), "status": "x",
            "deadline": null, "action": "none", "amountSats": 1});
        assert!(serde_json::from_value::<Notice>(extra).is_err());
    }
}
