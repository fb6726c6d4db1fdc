//! Where the fiat price of bitcoin comes from.
//!
//! Prices are integers: fiat minor units (cents) per bitcoin. [`FixedPrice`] serves tests and
//! development. [`HttpMedianPrice`] asks several configured HTTP endpoints, takes the median of
//! the answers (so one wrong or hostile source cannot move it), caches it for a short time and
//! refuses to serve a price older than its maximum age. [`from_config`] picks one from the
//! configuration, for the api and the worker alike.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::config::PriceConfig;
// Parsed with the rest of the configuration; re-exported here with the sources that use it.
pub use crate::config::PriceEndpoint;

/// A price: fiat minor units per bitcoin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Price {
    /// Minor units (e.g. cents) per BTC.
    pub minor_per_btc: u64,
}

/// Why no price could be given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    /// No source knows this currency.
    #[error("no price source for {0}")]
    UnknownCurrency(String),
    /// Too few sources answered and the cached price is too old.
    #[error("no fresh price for {0}: too few sources answered")]
    Stale(String),
}

/// A source of prices.
#[async_trait::async_trait]
pub trait PriceSource: Send + Sync + std::fmt::Debug {
    /// The current price of one bitcoin in `currency`.
    async fn price(&self, currency: &str) -> Result<Price, PriceError>;
}

/// Fixed prices (tests and development).
#[derive(Debug, Clone, Default)]
pub struct FixedPrice(pub HashMap<String, u64>);

impl FixedPrice {
    /// One currency at one price (minor units per BTC).
    pub fn single(currency: &str, minor_per_btc: u64) -> Self {
        Self(HashMap::from([(currency.to_owned(), minor_per_btc)]))
    }
}

#[async_trait::async_trait]
impl PriceSource for FixedPrice {
    async fn price(&self, currency: &str) -> Result<Price, PriceError> {
        self.0
            .get(currency)
            .map(|&minor_per_btc| Price { minor_per_btc })
            .ok_or_else(|| PriceError::UnknownCurrency(currency.to_owned()))
    }
}

/// The price source `config` describes; a fixed price is quoted in the market's `currency`.
pub fn from_config(config: &PriceConfig, currency: &str) -> Arc<dyn PriceSource> {
    match config {
        PriceConfig::Fixed(p) => Arc::new(FixedPrice::single(currency, *p)),
        PriceConfig::Http {
            endpoints,
            cache_for,
            max_age,
        } => Arc::new(HttpMedianPrice::new(
            endpoints.clone(),
            *cache_for,
            *max_age,
        )),
    }
}

/// The median of several HTTP sources, cached.
#[derive(Debug)]
pub struct HttpMedianPrice {
    endpoints: Vec<PriceEndpoint>,
    /// Reuse a price this long without asking again.
    cache_for: Duration,
    /// Never serve a price older than this.
    max_age: Duration,
    /// At least this many sources must answer for a new price.
    min_sources: usize,
    timeout: Duration,
    cache: Mutex<HashMap<String, (Price, Instant)>>,
}

impl HttpMedianPrice {
    /// A source over `endpoints`; a new price needs a majority of them to answer.
    pub fn new(endpoints: Vec<PriceEndpoint>, cache_for: Duration, max_age: Duration) -> Self {
        let min_sources = endpoints.len() / 2 + 1;
        Self {
            endpoints,
            cache_for,
            max_age,
            min_sources,
            timeout: Duration::from_secs(5),
            cache: Mutex::default(),
        }
    }

    async fn fetch_one(&self, endpoint: &PriceEndpoint, currency: &str) -> Option<u64> {
        let url = endpoint
            .url
            .replace("{currency}", currency)
            .replace("{currency_lower}", &currency.to_ascii_lowercase());
        let call = cdk::http_client::HttpClient::new().get(&url).send();
        let resp = tokio::time::timeout(self.timeout, call).await.ok()?.ok()?;
        if !resp.is_success() {
            return None;
        }
        let json: serde_json::Value = serde_json::from_str(&resp.body_lossy()).ok()?;
        let value = json.pointer(&endpoint.pointer)?;
        let text = match value {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => return None,
        };
        parse_major_to_minor(&text)
    }
}

/// `"61234.5"` → 6123450: decimal text in major units to minor units (two decimals, rounded
/// half up); `None` for anything else or a zero price.
pub fn parse_major_to_minor(text: &str) -> Option<u64> {
    let text = text.trim();
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u64 = whole.parse().ok()?;
    let cents: u64 = format!("{:0<2}", &frac[..frac.len().min(2)]).parse().ok()?;
    let round_up = frac.as_bytes().get(2).is_some_and(|d| *d >= b'5');
    let minor = whole.checked_mul(100)?.checked_add(cents)? + u64::from(round_up);
    (minor > 0).then_some(minor)
}

/// The median of `values` (the lower middle for an even count); `None` when empty.
pub fn median(mut values: Vec<u64>) -> Option<u64> {
    values.sort_unstable();
    let n = values.len();
    if n == 0 {
        return None;
    }
    Some(values[(n - 1) / 2])
}

#[async_trait::async_trait]
impl PriceSource for HttpMedianPrice {
    async fn price(&self, currency: &str) -> Result<Price, PriceError> {
        let mut cache = self.cache.lock().await;
        if let Some((price, at)) = cache.get(currency) {
            if at.elapsed() < self.cache_for {
                return Ok(*price);
            }
        }
        let answers =
            futures::future::join_all(self.endpoints.iter().map(|e| self.fetch_one(e, currency)))
                .await;
        let got: Vec<u64> = answers.into_iter().flatten().collect();
        if got.len() >= self.min_sources {
            if let Some(m) = median(got) {
                let price = Price { minor_per_btc: m };
                cache.insert(currency.to_owned(), (price, Instant::now()));
                return Ok(price);
            }
        }
        tracing::warn!(
            currency,
            "price sources did not answer; using the cache if fresh"
        );
        match cache.get(currency) {
            Some((price, at)) if at.elapsed() < self.max_age => Ok(*price),
            _ => Err(PriceError::Stale(currency.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn major_units_parse_to_cents() {
        assert_eq!(parse_major_to_minor("61234.5"), Some(6_123_450));
        assert_eq!(parse_major_to_minor("61234"), Some(6_123_400));
        assert_eq!(parse_major_to_minor("61234.567"), Some(6_123_457));
        assert_eq!(parse_major_to_minor("61234.564"), Some(6_123_456));
        assert_eq!(parse_major_to_minor("0"), None);
        assert_eq!(parse_major_to_minor("-1"), None);
        assert_eq!(parse_major_to_minor("1e5"), None);
    }

    #[test]
    fn median_resists_one_outlier() {
        assert_eq!(median(vec![100, 101, 1_000_000]), Some(101));
        assert_eq!(median(vec![100, 102]), Some(100));
        assert_eq!(median(vec![]), None);
    }
}
