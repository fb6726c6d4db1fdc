//! One configured HTTP price source (`PRICE_ENDPOINTS`), parsed with the rest of the
//! configuration.
//!
//! It lives with the configuration rather than with the price sources (`crate::price`) that
//! fetch from it, so the configuration depends on nothing that is built from it.

/// One HTTP price endpoint: a URL (with `{currency}` and `{currency_lower}` placeholders) and a
/// JSON pointer to a number or numeric string in major units (e.g. `/data/amount`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceEndpoint {
    /// URL template.
    pub url: String,
    /// JSON pointer (RFC 6901) to the price.
    pub pointer: String,
}

impl std::str::FromStr for PriceEndpoint {
    type Err = String;

    /// `url|/json/pointer`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (url, pointer) = s
            .split_once('|')
            .ok_or_else(|| "expected url|/json/pointer".to_owned())?;
        if !(url.starts_with("http://") || url.starts_with("https://")) || !pointer.starts_with('/')
        {
            return Err("expected http(s)://…|/json/pointer".to_owned());
        }
        Ok(Self {
            url: url.trim().to_owned(),
            pointer: pointer.trim().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse() {
        let e: PriceEndpoint = "https://x/{currency}|/data/amount"
            .parse()
            .expect("endpoint");
        assert_eq!(e.pointer, "/data/amount");
        assert!("ftp://x|/a".parse::<PriceEndpoint>().is_err());
        assert!("https://x".parse::<PriceEndpoint>().is_err());
    }
}
