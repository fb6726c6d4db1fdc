//! `Allow` on every 405 (RFC 9110 §15.5.6): the router refuses an unknown method with no header,
//! so the listener answers it from a table of its paths and their methods, read once from its
//! own OpenAPI document (plus the few routes outside it).

use std::sync::Arc;

use poem::http::{header, HeaderValue, StatusCode};
use poem::{Endpoint, IntoResponse, Request, Response};

/// One path template, split into segments (`None` is a `{parameter}`), and its `Allow` value.
#[derive(Debug, Clone)]
struct Entry {
    segments: Vec<Option<String>>,
    allow: HeaderValue,
}

/// Path templates and the methods each answers.
#[derive(Debug, Clone, Default)]
pub struct AllowTable {
    entries: Vec<Entry>,
}

fn split(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

impl AllowTable {
    /// The table of an OpenAPI document (JSON) served under `base`, plus `extra` routes outside
    /// it, each `GET`-only.
    pub fn new(base: &str, spec_json: &str, extra: &[&str]) -> Self {
        let mut table = Self::default();
        let spec: serde_json::Value = serde_json::from_str(spec_json).unwrap_or_default();
        if let Some(paths) = spec["paths"].as_object() {
            for (template, ops) in paths {
                let methods: Vec<String> = ops
                    .as_object()
                    .map(|o| o.keys().map(|m| m.to_ascii_uppercase()).collect())
                    .unwrap_or_default();
                table.add(&format!("{base}{template}"), methods);
            }
        }
        for path in extra {
            table.add(path, vec!["GET".to_owned()]);
        }
        table
    }

    fn add(&mut self, template: &str, mut methods: Vec<String>) {
        // The router answers HEAD wherever it answers GET.
        if methods.iter().any(|m| m == "GET") {
            methods.push("HEAD".to_owned());
        }
        methods.sort();
        methods.dedup();
        let Ok(allow) = HeaderValue::from_str(&methods.join(", ")) else {
            return;
        };
        let segments = split(template)
            .map(|s| (!(s.starts_with('{') && s.ends_with('}'))).then(|| s.to_owned()))
            .collect();
        self.entries.push(Entry { segments, allow });
    }

    /// The `Allow` value for a request path: the matching template with the most literal
    /// segments, as the router prefers them.
    pub fn allow_for(&self, path: &str) -> Option<HeaderValue> {
        let parts: Vec<&str> = split(path).collect();
        self.entries
            .iter()
            .filter(|e| {
                e.segments.len() == parts.len()
                    && e.segments
                        .iter()
                        .zip(&parts)
                        .all(|(s, p)| s.as_deref().is_none_or(|lit| lit == *p))
            })
            .max_by_key(|e| e.segments.iter().filter(|s| s.is_some()).count())
            .map(|e| e.allow.clone())
    }
}

/// The middleware: a 405 (as an error or a response) leaves with `Allow`.
pub async fn add_allow<E: Endpoint>(
    table: Arc<AllowTable>,
    next: E,
    req: Request,
) -> poem::Result<Response> {
    let path = req.uri().path().to_owned();
    let mut resp = match next.call(req).await {
        Ok(r) => r.into_response(),
        Err(e) if e.status() == StatusCode::METHOD_NOT_ALLOWED => crate::error::envelope(e).await,
        Err(e) => return Err(e),
    };
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED {
        if let Some(allow) = table.allow_for(&path) {
            resp.headers_mut().insert(header::ALLOW, allow);
        }
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_literal_template_wins() {
        let spec = r#"{"paths": {
            "/offers/{id}": {"get": {}},
            "/offers/{id}/claim": {"post": {}},
            "/admin/disputes/stats": {"post": {}},
            "/admin/disputes/{id}": {"get": {}, "delete": {}}
        }}"#;
        let t = AllowTable::new("/api/v1", spec, &["/health"]);
        let allow = |p: &str| t.allow_for(p).map(|v| v.to_str().unwrap_or("").to_owned());
        assert_eq!(allow("/api/v1/offers/x").as_deref(), Some("GET, HEAD"));
        assert_eq!(allow("/api/v1/offers/x/claim").as_deref(), Some("POST"));
        assert_eq!(
            allow("/api/v1/admin/disputes/stats").as_deref(),
            Some("POST")
        );
        assert_eq!(
            allow("/api/v1/admin/disputes/7").as_deref(),
            Some("DELETE, GET, HEAD")
        );
        assert_eq!(allow("/health").as_deref(), Some("GET, HEAD"));
        assert_eq!(allow("/nowhere"), None);
    }
}
