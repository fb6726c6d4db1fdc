//! Web Push messages (RFC 8030): the notice encrypted for one browser (RFC 8291, `aes128gcm`)
//! with `web-push-native`, and signed for its push service with our VAPID key (RFC 8292).
//!
//! The VAPID token is made here rather than by the crate: its audience must be the push
//! service's origin, port included when it is not the scheme's default, and the crate's own
//! token leaves the port out.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use web_push_native::jwt_simple::algorithms::{
    ECDSAP256KeyPairLike, ECDSAP256PublicKeyLike, ES256KeyPair,
};
use web_push_native::jwt_simple::claims::Claims;
use web_push_native::{p256, Auth, WebPushBuilder};

/// Why a push message could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The VAPID key is not a P-256 private key.
    #[error("not a P-256 private key")]
    BadVapidKey,
    /// The subscription's endpoint or keys are unusable.
    #[error("{0}")]
    BadSubscription(&'static str),
    /// Encryption or signing failed.
    #[error("push message: {0}")]
    Build(String),
}

/// The platform's VAPID key pair.
#[derive(Clone)]
pub struct VapidKey(std::sync::Arc<ES256KeyPair>);

impl std::fmt::Debug for VapidKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VapidKey([REDACTED])")
    }
}

impl VapidKey {
    /// The key from its raw 32-byte scalar, base64url (`VAPID_PRIVATE_KEY`).
    pub fn from_base64url(s: &str) -> Result<Self, PushError> {
        let raw = URL_SAFE_NO_PAD
            .decode(s.trim().trim_end_matches('='))
            .map_err(|_| PushError::BadVapidKey)?;
        if raw.len() != 32 {
            return Err(PushError::BadVapidKey);
        }
        ES256KeyPair::from_bytes(&raw)
            .map(|k| Self(std::sync::Arc::new(k)))
            .map_err(|_| PushError::BadVapidKey)
    }

    /// A fresh key (development and tests), with its base64url form.
    pub fn generate() -> (Self, String) {
        let pair = ES256KeyPair::generate();
        let raw = URL_SAFE_NO_PAD.encode(pair.to_bytes());
        (Self(std::sync::Arc::new(pair)), raw)
    }

    /// The public key browsers subscribe with (`applicationServerKey`): the uncompressed
    /// point, base64url.
    pub fn public_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.public_key().public_key().to_bytes_uncompressed())
    }

    /// `Authorization: vapid t=…, k=…` for a request to `endpoint`, valid for `valid`.
    fn authorization(
        &self,
        endpoint: &http::Uri,
        valid: Duration,
        subject: &str,
    ) -> Result<String, PushError> {
        let scheme = endpoint
            .scheme_str()
            .ok_or(PushError::BadSubscription("the endpoint has no scheme"))?;
        let host = endpoint
            .host()
            .ok_or(PushError::BadSubscription("the endpoint has no host"))?;
        let default_port = match scheme {
            "https" => Some(443),
            "http" => Some(80),
            _ => None,
        };
        let origin = match endpoint.port_u16() {
            Some(p) if Some(p) != default_port => format!("{scheme}://{host}:{p}"),
            _ => format!("{scheme}://{host}"),
        };
        let claims = Claims::create(valid.into())
            .with_audience(origin)
            .with_subject(subject);
        let token = self
            .0
            .sign(claims)
            .map_err(|e| PushError::Build(e.to_string()))?;
        Ok(format!("vapid t={token}, k={}", self.public_base64url()))
    }
}

/// A browser's subscription, as its `PushSubscription` serialises it.
#[derive(Debug, Clone)]
pub struct Subscription<'a> {
    /// The push service's URL for this browser.
    pub endpoint: &'a str,
    /// The browser's P-256 public key, uncompressed, base64url.
    pub p256dh: &'a str,
    /// The browser's 16-byte auth secret, base64url.
    pub auth: &'a str,
}

impl Subscription<'_> {
    /// Checks the keys decode as a browser gives them (before anything is stored).
    pub fn check_keys(&self) -> Result<(), PushError> {
        self.keys().map(|_| ())
    }

    fn keys(&self) -> Result<(p256::PublicKey, Auth), PushError> {
        let decode = |s: &str| URL_SAFE_NO_PAD.decode(s.trim().trim_end_matches('='));
        let public = decode(self.p256dh)
            .ok()
            .and_then(|b| p256::PublicKey::from_sec1_bytes(&b).ok())
            .ok_or(PushError::BadSubscription(
                "keys.p256dh must be a P-256 public key (base64url)",
            ))?;
        let auth: [u8; 16] = decode(self.auth)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(PushError::BadSubscription(
                "keys.auth must be 16 bytes (base64url)",
            ))?;
        Ok((public, Auth::from(auth)))
    }
}

/// How a message is delivered.
#[derive(Debug, Clone)]
pub struct Delivery<'a> {
    /// How long the push service keeps it for an offline browser (up to the deadline).
    pub ttl: Duration,
    /// `high` for reminders, `normal` otherwise.
    pub urgency: &'static str,
    /// A newer message with the same topic replaces an older one.
    pub topic: &'a str,
}

/// The encrypted, signed request that delivers `payload` to `sub`.
pub fn request(
    key: &VapidKey,
    subject: &str,
    sub: &Subscription<'_>,
    payload: &[u8],
    d: &Delivery<'_>,
) -> Result<http::Request<Vec<u8>>, PushError> {
    let endpoint: http::Uri = sub
        .endpoint
        .parse()
        .map_err(|_| PushError::BadSubscription("the endpoint is not a URL"))?;
    let (public, auth) = sub.keys()?;
    let mut req = WebPushBuilder::new(endpoint.clone(), public, auth)
        .with_valid_duration(d.ttl)
        .build(payload.to_vec())
        .map_err(|e| PushError::Build(e.to_string()))?;
    // The signature is valid for at most a day (what push services accept), however long
    // the message may wait there.
    let valid = d
        .ttl
        .clamp(Duration::from_secs(60), Duration::from_secs(12 * 3600));
    let authorization = key.authorization(&endpoint, valid, subject)?;
    let headers = req.headers_mut();
    let value =
        |s: &str| http::HeaderValue::from_str(s).map_err(|e| PushError::Build(e.to_string()));
    headers.insert(http::header::AUTHORIZATION, value(&authorization)?);
    headers.insert("urgency", value(d.urgency)?);
    headers.insert("topic", value(d.topic)?);
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_decrypts_with_the_browsers_key_and_names_its_origin() {
        let (key, raw) = VapidKey::generate();
        assert_eq!(
            VapidKey::from_base64url(&raw)
                .expect("parse")
                .public_base64url(),
            key.public_base64url()
        );
        let mut seed = [0u8; 32];
        seed[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        seed[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        let browser = p256::SecretKey::from_slice(&seed).expect("a scalar");
        let p256dh = URL_SAFE_NO_PAD.encode(
            p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(
                &browser.public_key(),
                false,
            )
            .as_bytes(),
        );
        let auth_raw = [7u8; 16];
        let auth = URL_SAFE_NO_PAD.encode(auth_raw);
        let sub = Subscription {
            endpoint: "https://push.example:8443/s/1",
            p256dh: &p256dh,
            auth: &auth,
        };
        let req = request(
            &key,
            "mailto:ops@example.org",
            &sub,
            br#"{"a":1}"#,
            &Delivery {
                ttl: Duration::from_secs(600),
                urgency: "high",
                topic: "abc",
            },
        )
        .expect("request");
        assert_eq!(req.headers()["content-encoding"], "aes128gcm");
        assert_eq!(req.headers()["ttl"], "600");
        assert_eq!(req.headers()["urgency"], "high");
        let plain = web_push_native::decrypt(req.body().clone(), &browser, &Auth::from(auth_raw))
            .expect("decrypts");
        assert_eq!(plain, br#"{"a":1}"#);
        let authz = req.headers()["authorization"].to_str().expect("ascii");
        let token = authz
            .strip_prefix("vapid t=")
            .and_then(|r| r.split(", k=").next())
            .expect("token");
        let claims = key
            .0
            .public_key()
            .verify_token::<web_push_native::jwt_simple::claims::NoCustomClaims>(token, None)
            .expect("verifies");
        assert_eq!(
            claims.audiences.expect("aud").into_string().expect("one"),
            "https://push.example:8443"
        );
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(VapidKey::from_base64url("not-a-key").is_err());
        let sub = Subscription {
            endpoint: "https://push.example/s",
            p256dh: "AAAA",
            auth: "AAAA",
        };
        assert!(sub.check_keys().is_err());
    }
}
