//! Webhooks for bots and market makers, signed in the Standard Webhooks form: headers
//! `webhook-id`, `webhook-timestamp` and `webhook-signature` (`v1,` and the base64 of
//! HMAC-SHA256 over `id.timestamp.body` under the secret), the secret given to the party once as
//! `whsec_` and base64. A receiver checks it with any Standard Webhooks library.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A fresh signing secret, `whsec_` and 32 random bytes in base64.
pub fn new_secret() -> String {
    let mut key = [0u8; 32];
    key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    format!("whsec_{}", STANDARD.encode(key))
}

/// The `webhook-signature` value of `body` sent as message `id` at `timestamp` (unix seconds),
/// or `None` for a secret that is not `whsec_` and base64.
pub fn signature(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = STANDARD.decode(secret.strip_prefix("whsec_")?).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// The signed POST of `body` to `url`.
pub fn request(
    url: &str,
    secret: &str,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<http::Request<Vec<u8>>, &'static str> {
    let sig = signature(secret, id, timestamp, body).ok_or("a malformed webhook secret")?;
    http::Request::builder()
        .method(http::Method::POST)
        .uri(url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", sig)
        .body(body.to_vec())
        .map_err(|_| "a webhook URL that is not a URL")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_like_the_standard_webhooks_reference() {
        // The reference libraries' own example: secret, id, timestamp, payload, signature.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let sig = signature(
            secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        )
        .expect("signs");
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(signature("nope", "a", 1, b"").is_none());
        assert!(new_secret().starts_with("whsec_"));
    }
}
