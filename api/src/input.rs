//! Input hardening in front of every route: request bodies are read with a size limit (JSON a
//! few KiB; the two upload routes, whose caller [`crate::upload_guard`] has already checked,
//! `RECEIPT_MAX_BYTES` plus multipart overhead), so an oversized body is
//! refused with 413 while it is read, never held whole; and NUL or other control characters in
//! the path, a query parameter or a JSON string are refused with 400 naming where, before any
//! handler, database or mint call sees them.

use futures::StreamExt;
use poem::http::StatusCode;
use poem::{Body, Endpoint, IntoResponse, Request, Response};
use serde_json::Value;

use crate::error::ApiError;
use crate::{upload_guard, AppState};

/// Largest JSON body, bytes: the largest request (a funding token, a reputation stake) fits
/// with room to spare.
pub const JSON_MAX_BYTES: usize = 256 * 1024;

/// Multipart framing and the note beside an upload's image.
const MULTIPART_OVERHEAD: usize = 64 * 1024;

/// A control character that has no place in text (tabs and line breaks are text).
fn is_forbidden(c: char) -> bool {
    c.is_control() && !matches!(c, '\n' | '\r' | '\t')
}

/// The first place in `v` holding a forbidden character, as a JSON path.
fn forbidden_in(v: &Value, at: &str) -> Option<String> {
    match v {
        Value::String(s) if s.chars().any(is_forbidden) => Some(at.to_owned()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| forbidden_in(item, &format!("{at}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, item)| {
            let here = if at.is_empty() {
                k.clone()
            } else {
                format!("{at}.{k}")
            };
            if k.chars().any(is_forbidden) {
                return Some(here);
            }
            forbidden_in(item, &here)
        }),
        _ => None,
    }
}

fn refuse(field: &str) -> ApiError {
    ApiError::bad_request(
        "invalid_characters",
        format!("{field}: control characters are not allowed"),
    )
}

/// The path and query checked for control characters (after percent-decoding).
fn check_uri(req: &Request) -> Result<(), ApiError> {
    let path = percent_decode(req.uri().path());
    if path.chars().any(is_forbidden) {
        return Err(refuse("path"));
    }
    for pair in req.uri().query().unwrap_or_default().split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let name = percent_decode(k);
        if name.chars().any(is_forbidden) || percent_decode(v).chars().any(is_forbidden) {
            return Err(refuse(&name));
        }
    }
    Ok(())
}

/// Percent-decodes `s` (and `+` as a space, as forms do); invalid escapes stay as they are.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the body may be at most {limit} bytes"),
    )
}

/// Reads `body` up to `limit` bytes; 413 as soon as it goes past.
async fn read_limited(body: Body, limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut stream = body.into_bytes_stream();
    let mut buf = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|_| ApiError::bad_request("unreadable_body", "the body could not be read"))?;
        if buf.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// The middleware (see the module doc).
pub async fn harden<E: Endpoint>(next: E, mut req: Request) -> poem::Result<Response> {
    if let Err(e) = check_uri(&req) {
        return Ok(e.to_response());
    }
    // Only the upload routes themselves get the upload's limit (any other path ending the
    // same way keeps the JSON one).
    let upload_max = req.data::<AppState>().and_then(|s| {
        let base = &s.ctx.config.api.base_path;
        upload_guard::target(base, req.method(), req.uri().path())
            .map(|_| s.ctx.config.limits.receipt_max_bytes)
    });
    let limit = match upload_max {
        Some(max) => max + MULTIPART_OVERHEAD,
        None => JSON_MAX_BYTES,
    };
    let declared = req
        .headers()
        .get(poem::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    // A declared length past the limit is refused before a byte is read.
    if declared.is_some_and(|n| n > limit) {
        return Ok(too_large(limit).to_response());
    }
    let body = match read_limited(req.take_body(), limit).await {
        Ok(b) => b,
        Err(e) => return Ok(e.to_response()),
    };
    let is_json = req
        .content_type()
        .is_some_and(|t| t.starts_with("application/json"));
    if is_json {
        if let Ok(v) = serde_json::from_slice::<Value>(&body) {
            if let Some(field) = forbidden_in(&v, "") {
                return Ok(refuse(&field).to_response());
            }
        }
    }
    req.set_body(Body::from(body));
    Ok(next.call(req).await?.into_response())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn control_characters_are_found_where_they_are() {
        let v = json!({"a": "ok\nfine", "b": {"c": ["x", "nul\u{0}"]}});
        assert_eq!(forbidden_in(&v, "").as_deref(), Some("b.c[1]"));
        assert_eq!(forbidden_in(&json!({"t": "tab\there"}), ""), None);
        assert_eq!(
            forbidden_in(&json!({"k\u{1}": 1}), "").as_deref(),
            Some("k\u{1}")
        );
    }

    #[test]
    fn percent_escapes_decode() {
        assert_eq!(percent_decode("a%00b"), "a\u{0}b");
        assert_eq!(percent_decode("EUR"), "EUR");
        assert_eq!(percent_decode("50%"), "50%");
        assert_eq!(percent_decode("%zz+x"), "%zz x");
    }
}
