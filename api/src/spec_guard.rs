//! The listener's own OpenAPI document, enforced at the edge where the router and poem-openapi
//! are looser than the document says:
//!
//! - every 405 carries `Allow` (RFC 9110 §15.5.6), read from the document's paths (plus the few
//!   routes outside it); the router alone sends none;
//! - a JSON body's value types are checked against the operation's request schema before the
//!   handler parses it: poem-openapi reads a number or a boolean as a string and `null` as an
//!   absent optional field, while the document promises strings and never declares `null`.
//!   A mismatch is 400 `bad_request` (as poem-openapi's own parse errors) naming the field. Unknown fields stay ignored.

use std::collections::BTreeMap;
use std::sync::Arc;

use poem::http::{header, HeaderValue, Method, StatusCode};
use poem::{Body, Endpoint, IntoResponse, Request, Response};
use serde_json::Value;

use crate::error::ApiError;

/// One path template, split into segments (`None` is a `{parameter}`), its `Allow` value and
/// the JSON request schema of each method that takes one.
#[derive(Debug, Clone)]
struct Entry {
    segments: Vec<Option<String>>,
    allow: HeaderValue,
    json_bodies: BTreeMap<String, Value>,
}

/// Path templates, the methods each answers and their JSON request schemas.
#[derive(Debug, Clone, Default)]
pub struct SpecTable {
    entries: Vec<Entry>,
    schemas: serde_json::Map<String, Value>,
}

fn split(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

impl SpecTable {
    /// The table of an OpenAPI document (JSON) served under `base`, plus `extra` routes outside
    /// it, each `GET`-only.
    pub fn new(base: &str, spec_json: &str, extra: &[&str]) -> Self {
        let mut table = Self::default();
        let spec: Value = serde_json::from_str(spec_json).unwrap_or_default();
        if let Some(schemas) = spec["components"]["schemas"].as_object() {
            table.schemas = schemas.clone();
        }
        if let Some(paths) = spec["paths"].as_object() {
            for (template, ops) in paths {
                let Some(ops) = ops.as_object() else { continue };
                let methods = ops.keys().map(|m| m.to_ascii_uppercase()).collect();
                let json_bodies = ops
                    .iter()
                    .filter_map(|(m, op)| {
                        let content = op["requestBody"]["content"].as_object()?;
                        let (_, media) = content
                            .iter()
                            .find(|(t, _)| t.starts_with("application/json"))?;
                        Some((m.to_ascii_uppercase(), media["schema"].clone()))
                    })
                    .collect();
                table.add(&format!("{base}{template}"), methods, json_bodies);
            }
        }
        for path in extra {
            table.add(path, vec!["GET".to_owned()], BTreeMap::new());
        }
        table
    }

    fn add(
        &mut self,
        template: &str,
        mut methods: Vec<String>,
        json_bodies: BTreeMap<String, Value>,
    ) {
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
        self.entries.push(Entry {
            segments,
            allow,
            json_bodies,
        });
    }

    /// The `Allow` value for a request path: the matching template with the most literal
    /// segments, as the router prefers them.
    pub fn allow_for(&self, path: &str) -> Option<HeaderValue> {
        self.entry(path).map(|e| e.allow.clone())
    }

    fn entry(&self, path: &str) -> Option<&Entry> {
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
    }

    /// The first place where `body` (sent to `method` `path`) has a JSON type its schema does
    /// not allow, and what was expected there.
    pub fn mistyped(&self, method: &Method, path: &str, body: &Value) -> Option<(String, String)> {
        let schema = self.entry(path)?.json_bodies.get(method.as_str())?;
        self.check(schema, body, "body", 0)
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema["$ref"].as_str() {
            Some(r) => r
                .strip_prefix("#/components/schemas/")
                .and_then(|name| self.schemas.get(name))
                .unwrap_or(&Value::Null),
            None => schema,
        }
    }

    fn check(&self, schema: &Value, v: &Value, at: &str, depth: usize) -> Option<(String, String)> {
        let schema = self.resolve(schema);
        if depth > 32 || !schema.is_object() {
            return None;
        }
        let wrong = |what: &str| Some((at.to_owned(), what.to_owned()));
        if v.is_null() {
            return if schema["nullable"] == true {
                None
            } else {
                wrong("a value (omit the field instead of sending null)")
            };
        }
        match schema["type"].as_str() {
            Some("string") if !v.is_string() => wrong("a string"),
            Some("boolean") if !v.is_boolean() => wrong("a boolean"),
            Some("integer") if !(v.is_i64() || v.is_u64()) => wrong("an integer"),
            Some("number") if !v.is_number() => wrong("a number"),
            Some("array") => match v.as_array() {
                None => wrong("an array"),
                Some(items) => items.iter().enumerate().find_map(|(i, item)| {
                    self.check(&schema["items"], item, &format!("{at}[{i}]"), depth + 1)
                }),
            },
            Some("object") => match v.as_object() {
                None => wrong("an object"),
                Some(fields) => fields.iter().find_map(|(k, item)| {
                    let field = &schema["properties"][k.as_str()];
                    self.check(field, item, &format!("{at}.{k}"), depth + 1)
                }),
            },
            _ => None,
        }
    }
}

/// The middleware: JSON bodies of the wrong types are refused, and a 405 (as an error or a
/// response) leaves with `Allow`. Runs inside `input::harden`, so the body is already bounded.
pub async fn guard<E: Endpoint>(
    table: Arc<SpecTable>,
    next: E,
    mut req: Request,
) -> poem::Result<Response> {
    let path = req.uri().path().to_owned();
    let is_json = req
        .content_type()
        .is_some_and(|t| t.starts_with("application/json"));
    if is_json {
        let bytes = req.take_body().into_vec().await.unwrap_or_default();
        if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
            if let Some((field, expected)) = table.mistyped(req.method(), &path, &v) {
                let message = format!("{field}: expected {expected}");
                return Ok(ApiError::bad_request("bad_request", message).to_response());
            }
        }
        req.set_body(Body::from(bytes));
    }
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
        let t = SpecTable::new("/api/v1", spec, &["/health"]);
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

    #[test]
    fn json_types_follow_the_schema() {
        let spec = r##"{"paths": {"/p/{id}": {"post": {"requestBody": {"content": {
                "application/json; charset=utf-8": {"schema": {"$ref": "#/components/schemas/In"}}}}}}},
            "components": {"schemas": {"In": {"type": "object", "properties": {
                "name": {"type": "string"}, "n": {"type": "integer"},
                "tags": {"type": "array", "items": {"type": "string"}}}}}}}"##;
        let t = SpecTable::new("", spec, &[]);
        let check = |v: Value| t.mistyped(&Method::POST, "/p/1", &v).map(|(at, _)| at);
        assert_eq!(
            check(serde_json::json!({"name": "x", "n": 1, "other": null})),
            None
        );
        assert_eq!(
            check(serde_json::json!({"name": false})).as_deref(),
            Some("body.name")
        );
        assert_eq!(
            check(serde_json::json!({"n": null})).as_deref(),
            Some("body.n")
        );
        assert_eq!(
            check(serde_json::json!({"n": 1.5})).as_deref(),
            Some("body.n")
        );
        assert_eq!(
            check(serde_json::json!({"tags": ["a", 1]})).as_deref(),
            Some("body.tags[1]")
        );
        assert_eq!(check(serde_json::json!([])).as_deref(), Some("body"));
        assert_eq!(
            t.mistyped(&Method::GET, "/p/1", &serde_json::json!(1)),
            None
        );
    }
}
