//! What OpenPleb relies on at the mint, checked against the mint's own `GET /v1/info`
//! (NUT-06) instead of assumed: a pure function of that answer, so it is tested without a mint.
//!
//! Required of every process (the wallets behind them rely on these):
//! - NUT-07: reconciliation, payout release and the treasury sweep ask which proofs are spent;
//! - NUT-09: a wallet operation cut off after its request recovers its outputs by restore;
//! - NUT-11: every payout, refund and reward is P2PK-locked to its recipient's key;
//! - NUT-12: the wallets check the mint's DLEQ proofs, and tokens handed to traders carry
//!   them;
//! - NUT-20: deposit and bond quotes are locked to the receiving wallet's key, so nobody else
//!   can mint them (the api holds no key: it only knows the lock's public half).
//!
//! Required of the api only: NUT-22 blind auth on `POST /v1/checkstate`, where it spends a
//! trader's BAT to verify it (an unprotected endpoint accepts any string). Workers verify no
//! BAT.
//!
//! Used when present: NUT-17 websockets for bolt11 mint quotes (the worker's quote
//! subscription); without them quotes are polled.
//!
//! A mint that answers without a requirement is a configuration error, not an outage: the
//! processes exit on it at its first answer (`crate::health::watch`).

use cdk::nuts::nut17::WsCommand;
use cdk::nuts::{CurrencyUnit, Method, MintInfo, PaymentMethod, RoutePath};

/// What a process relies on at the mint, checked once, at the first `/v1/info` that answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MintNeeds {
    /// The api: the common requirements, and blind auth on `POST /v1/checkstate`, where it
    /// verifies BATs by spending them.
    Api,
    /// A worker: the common requirements.
    Worker,
}

/// What the mint offers beyond the requirements, for a process to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MintCapabilities {
    /// NUT-17: websocket subscriptions to bolt11 mint quotes in sats.
    pub quote_websockets: bool,
}

/// One thing OpenPleb relies on at the mint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirement {
    /// The NUT that specifies it.
    pub nut: u8,
    /// What the mint fails to do, as the error line says it ("does not support NUT-20
    /// (signed mint quotes)").
    pub lack: &'static str,
    /// Why OpenPleb needs it.
    pub why: &'static str,
}

/// What every process requires, in the order they are reported.
const COMMON: &[Requirement] = &[
    Requirement {
        nut: 7,
        lack: "does not support NUT-07 (token state check)",
        why: "reconciliation, payout release and the treasury sweep ask which proofs are spent",
    },
    Requirement {
        nut: 9,
        lack: "does not support NUT-09 (restore signatures)",
        why: "a wallet operation cut off after its request recovers its outputs by restore",
    },
    Requirement {
        nut: 11,
        lack: "does not support NUT-11 (pay to public key)",
        why: "every payout, refund and reward is locked to its recipient's key",
    },
    Requirement {
        nut: 12,
        lack: "does not support NUT-12 (DLEQ proofs)",
        why: "the wallets check the mint's signatures, and tokens handed to traders carry \
              the proofs",
    },
    Requirement {
        nut: 20,
        lack: "does not support NUT-20 (signed mint quotes)",
        why: "deposit and bond quotes are locked to the receiving wallet's key so that \
              nobody else can mint them",
    },
];

/// What the api requires besides.
const API: &[Requirement] = &[Requirement {
    nut: 22,
    lack: "does not blind-protect POST /v1/checkstate (NUT-22)",
    why: "the api verifies a trader's blind auth token by spending it there, and an \
          unprotected endpoint accepts any string; enable blind auth on that endpoint",
}];

/// A mint that answers without something OpenPleb relies on. One line: the first missing
/// requirement in full, the others by number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the mint at {url} {}, which OpenPleb relies on: {}{}", .missing[0].lack, .missing[0].why, also(.missing))]
pub struct MintLacks {
    url: String,
    /// Never empty (only [`MintNeeds::check`] makes one).
    missing: Vec<Requirement>,
}

impl MintLacks {
    /// The NUTs it lacks, in order.
    pub fn nuts(&self) -> Vec<u8> {
        self.missing.iter().map(|r| r.nut).collect()
    }
}

fn also(missing: &[Requirement]) -> String {
    let rest: Vec<String> = missing
        .iter()
        .skip(1)
        .map(|r| format!("NUT-{:02}", r.nut))
        .collect();
    if rest.is_empty() {
        String::new()
    } else {
        format!(" (it also lacks {})", rest.join(", "))
    }
}

impl MintNeeds {
    /// Whether the mint at `url`, which answered `info`, offers what these needs rely on;
    /// if it does, what else it offers.
    pub fn check(self, url: &str, info: &MintInfo) -> Result<MintCapabilities, MintLacks> {
        let extra: &[Requirement] = match self {
            MintNeeds::Api => API,
            MintNeeds::Worker => &[],
        };
        let missing: Vec<Requirement> = COMMON
            .iter()
            .chain(extra)
            .filter(|r| !offers(info, r.nut))
            .copied()
            .collect();
        if !missing.is_empty() {
            return Err(MintLacks {
                url: url.to_owned(),
                missing,
            });
        }
        Ok(MintCapabilities {
            quote_websockets: quote_websockets(info),
        })
    }
}

/// Whether `info` says the mint offers what requirement `nut` asks.
fn offers(info: &MintInfo, nut: u8) -> bool {
    let n = &info.nuts;
    match nut {
        7 => n.nut07.supported,
        9 => n.nut09.supported,
        11 => n.nut11.supported,
        12 => n.nut12.supported,
        20 => n.nut20.supported,
        22 => checkstate_protected(info),
        _ => false,
    }
}

/// Whether `info` lists `POST /v1/checkstate` as blind-protected (NUT-22).
pub fn checkstate_protected(info: &MintInfo) -> bool {
    info.nuts.nut22.as_ref().is_some_and(|s| {
        s.protected_endpoints
            .iter()
            .any(|e| e.method == Method::Post && e.path == RoutePath::Checkstate)
    })
}

/// Whether `info` offers NUT-17 subscriptions to bolt11 mint quotes in sats.
fn quote_websockets(info: &MintInfo) -> bool {
    info.nuts.nut17.supported.iter().any(|m| {
        m.method == PaymentMethod::BOLT11
            && m.unit == CurrencyUnit::Sat
            && m.commands.contains(&WsCommand::Bolt11MintQuote)
    })
}

#[cfg(test)]
mod tests {
    use cdk::nuts::nut17::SupportedMethods;
    use cdk::nuts::{BlindAuthSettings, Nuts, ProtectedEndpoint};

    use super::*;

    const URL: &str = "https://mint.example";

    /// What cdk's mint offers by default, with blind auth on checkstate and websockets.
    fn full() -> MintInfo {
        let mut nuts = Nuts::new()
            .nut07(true)
            .nut09(true)
            .nut11(true)
            .nut12(true)
            .nut20(true)
            .nut17(vec![SupportedMethods::default_bolt11(CurrencyUnit::Sat)]);
        nuts.nut22 = Some(BlindAuthSettings::new(
            50,
            vec![ProtectedEndpoint::new(Method::Post, RoutePath::Checkstate)],
        ));
        MintInfo {
            nuts,
            ..MintInfo::default()
        }
    }

    #[test]
    fn a_mint_with_everything_passes_and_offers_websockets() {
        let caps = MintCapabilities {
            quote_websockets: true,
        };
        assert_eq!(MintNeeds::Api.check(URL, &full()), Ok(caps));
        assert_eq!(MintNeeds::Worker.check(URL, &full()), Ok(caps));
    }

    #[test]
    fn a_mint_without_nut20_is_refused_by_name() {
        let mut info = full();
        info.nuts.nut20.supported = false;
        for needs in [MintNeeds::Api, MintNeeds::Worker] {
            let err = needs.check(URL, &info).expect_err("refused");
            assert_eq!(err.nuts(), vec![20]);
            assert_eq!(
                err.to_string(),
                "the mint at https://mint.example does not support NUT-20 (signed mint \
                 quotes), which OpenPleb relies on: deposit and bond quotes are locked to the \
                 receiving wallet's key so that nobody else can mint them"
            );
        }
    }

    #[test]
    fn every_common_requirement_is_checked_and_all_missing_are_named() {
        for nut in [7u8, 9, 11, 12, 20] {
            let mut info = full();
            let flag = match nut {
                7 => &mut info.nuts.nut07.supported,
                9 => &mut info.nuts.nut09.supported,
                11 => &mut info.nuts.nut11.supported,
                12 => &mut info.nuts.nut12.supported,
                _ => &mut info.nuts.nut20.supported,
            };
            *flag = false;
            let err = MintNeeds::Worker.check(URL, &info).expect_err("refused");
            assert_eq!(err.nuts(), vec![nut]);
            assert!(err.to_string().contains(&format!("NUT-{nut:02}")), "{err}");
        }
        // A mint that advertises nothing (an empty /v1/info) lacks them all, in one line.
        let err = MintNeeds::Api
            .check(URL, &MintInfo::default())
            .expect_err("refused");
        assert_eq!(err.nuts(), vec![7, 9, 11, 12, 20, 22]);
        let line = err.to_string();
        assert!(line.starts_with("the mint at https://mint.example does not support NUT-07"));
        assert!(
            line.ends_with("(it also lacks NUT-09, NUT-11, NUT-12, NUT-20, NUT-22)"),
            "{line}"
        );
        assert_eq!(line.lines().count(), 1);
    }

    #[test]
    fn only_the_api_needs_a_protected_checkstate() {
        let mut info = full();
        info.nuts.nut22 = None;
        assert!(MintNeeds::Worker.check(URL, &info).is_ok());
        let err = MintNeeds::Api.check(URL, &info).expect_err("refused");
        assert_eq!(err.nuts(), vec![22]);
        assert!(err
            .to_string()
            .contains("does not blind-protect POST /v1/checkstate"));
        // Blind auth on other endpoints only is no better.
        info.nuts.nut22 = Some(BlindAuthSettings::new(
            50,
            vec![ProtectedEndpoint::new(Method::Post, RoutePath::Swap)],
        ));
        assert_eq!(
            MintNeeds::Api.check(URL, &info).map_err(|e| e.nuts()),
            Err(vec![22])
        );
    }

    #[test]
    fn websockets_count_only_for_bolt11_mint_quotes_in_sats() {
        let mut info = full();
        info.nuts.nut17.supported.clear();
        assert_eq!(
            MintNeeds::Worker.check(URL, &info),
            Ok(MintCapabilities::default())
        );
        info.nuts.nut17.supported = vec![SupportedMethods::new(
            PaymentMethod::BOLT11,
            CurrencyUnit::Sat,
            vec![WsCommand::ProofState, WsCommand::Bolt11MeltQuote],
        )];
        assert!(
            !MintNeeds::Worker
                .check(URL, &info)
                .expect("ok")
                .quote_websockets
        );
        info.nuts.nut17.supported = vec![SupportedMethods::default_bolt11(CurrencyUnit::Usd)];
        assert!(
            !MintNeeds::Worker
                .check(URL, &info)
                .expect("ok")
                .quote_websockets
        );
    }
}
