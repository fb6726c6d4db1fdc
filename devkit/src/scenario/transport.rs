//! The one seam between a scenario and a running backend: a request as a trader or an admin
//! sends it, and the answer's status and JSON body. The api tests' in-process harness, the
//! bench's stack and a stack over real HTTP (`scripts/dev`, chaos) each implement
//! [`Transport`] once, so every scenario step is written once for all of them.

use std::collections::BTreeMap;

use async_trait::async_trait;
use cdk::nuts::SecretKey;
use serde_json::Value;

use crate::Trader;

/// The smallest valid PNG (1×1): every scenario's receipt.
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0a, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];

/// The HTTP methods the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
}

impl Method {
    /// The method's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }
}

/// Who sends a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// Nobody: no `Authorization` header.
    Anonymous,
    /// A bearer credential (a session's BAT, or anything a test wants refused).
    Bearer(String),
    /// The stack's admin token.
    Admin,
}

/// A file sent as `multipart/form-data` field `image` (a receipt or a piece of evidence), with
/// an optional text field `note`.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// Its file name.
    pub filename: String,
    /// Its declared content type (a test may lie about it).
    pub content_type: String,
    /// The `note` field, if any.
    pub note: Option<String>,
}

impl Upload {
    /// [`PNG`] as `receipt.png`.
    pub fn png() -> Self {
        Self::image(PNG.to_vec(), "receipt.png")
    }

    /// `bytes` declared as a PNG named `filename`.
    pub fn image(bytes: Vec<u8>, filename: &str) -> Self {
        Self {
            bytes,
            filename: filename.to_owned(),
            content_type: "image/png".to_owned(),
            note: None,
        }
    }

    /// With the text field `note`.
    pub fn note(mut self, note: &str) -> Self {
        self.note = Some(note.to_owned());
        self
    }
}

/// A request's body.
#[derive(Debug, Clone)]
pub enum Body {
    /// None.
    Empty,
    /// JSON.
    Json(Value),
    /// A multipart upload.
    Upload(Upload),
}

/// One request: `path` is below the API's base path (`/offers/{id}`); admin routes (`/admin/`)
/// and the OIDC provider's (`/oidc-api/`) go to the admin listener.
#[derive(Debug, Clone)]
pub struct Call {
    /// The method.
    pub method: Method,
    /// Below the base path.
    pub path: String,
    /// Who sends it.
    pub auth: Auth,
    /// Its body.
    pub body: Body,
    /// Headers besides `Authorization` and the body's type (e.g. `X-Request-Id`).
    pub headers: Vec<(String, String)>,
}

impl Call {
    /// A request without a body.
    pub fn new(method: Method, path: impl Into<String>, auth: impl Into<Auth>) -> Self {
        Self {
            method,
            path: path.into(),
            auth: auth.into(),
            body: Body::Empty,
            headers: Vec::new(),
        }
    }

    /// With header `name`: `value`.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// With a JSON body.
    pub fn json(mut self, body: Value) -> Self {
        self.body = Body::Json(body);
        self
    }

    /// Whether it goes to the admin listener.
    pub fn is_admin(&self) -> bool {
        ["/admin/", "/oidc-api/"]
            .iter()
            .any(|p| self.path.starts_with(p))
    }
}

/// An answer: its status, its headers where the transport sees them, and its body (JSON, or
/// the text as a JSON string).
#[derive(Debug, Clone)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The headers, names in lower case (the in-process transport's; over HTTP, none).
    pub headers: BTreeMap<String, String>,
    /// The body.
    pub body: Value,
}

impl Reply {
    /// A reply from a status and the body's text.
    pub fn from_text(status: u16, text: String) -> Self {
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Self {
            status,
            headers: BTreeMap::new(),
            body,
        }
    }

    /// Header `name` (lower case), if the answer had it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body of a 2xx answer, else an error naming the status and the body.
    pub fn ok(self) -> anyhow::Result<Value> {
        anyhow::ensure!(self.is_success(), "answer {}: {}", self.status, self.body);
        Ok(self.body)
    }

    /// The body of an answer with exactly `status`, else an error naming both.
    pub fn expect(self, status: u16) -> anyhow::Result<Value> {
        anyhow::ensure!(
            self.status == status,
            "expected {status}, got {}: {}",
            self.status,
            self.body
        );
        Ok(self.body)
    }

    /// Checks a refusal: `status` and the stable error code `code`.
    pub fn refused(self, status: u16, code: &str) -> anyhow::Result<Value> {
        let body = self.expect(status)?;
        anyhow::ensure!(body["error"]["code"] == code, "expected {code}: {body}");
        Ok(body)
    }
}

/// A running backend as its clients see it.
#[async_trait]
pub trait Transport: Send + Sync {
    /// Sends `call`; an error only when no answer came.
    async fn send(&self, call: Call) -> anyhow::Result<Reply>;

    /// Logs `trader` in at the stack's OIDC issuer and mints `n` BATs with it.
    async fn bats(&self, trader: &Trader, n: u64) -> anyhow::Result<Vec<String>>;

    /// Sees that `invoice` (for `sats`) is paid: pays it where the mint pays only on command,
    /// does nothing where the mint pays every invoice by itself.
    async fn pay_invoice(&self, invoice: &str, sats: u64) -> anyhow::Result<()>;

    /// Redeems P2PK-locked `tokens` with `key` into a fresh wallet; the sats received.
    async fn redeem(&self, tokens: &[String], key: &SecretKey) -> anyhow::Result<u64>;

    /// `GET path` as `auth`.
    async fn get<A: Into<Auth> + Send>(&self, path: &str, auth: A) -> anyhow::Result<Reply> {
        self.send(Call::new(Method::Get, path, auth)).await
    }

    /// `POST path` as `auth` with a JSON body.
    async fn post<A: Into<Auth> + Send>(
        &self,
        path: &str,
        auth: A,
        body: Value,
    ) -> anyhow::Result<Reply> {
        self.send(Call::new(Method::Post, path, auth).json(body))
            .await
    }

    /// `POST path` as `auth` without a body.
    async fn post_empty<A: Into<Auth> + Send>(&self, path: &str, auth: A) -> anyhow::Result<Reply> {
        self.send(Call::new(Method::Post, path, auth)).await
    }

    /// `PATCH path` as `auth` with a JSON body.
    async fn patch<A: Into<Auth> + Send>(
        &self,
        path: &str,
        auth: A,
        body: Value,
    ) -> anyhow::Result<Reply> {
        self.send(Call::new(Method::Patch, path, auth).json(body))
            .await
    }

    /// `DELETE path` as `auth`.
    async fn delete<A: Into<Auth> + Send>(&self, path: &str, auth: A) -> anyhow::Result<Reply> {
        self.send(Call::new(Method::Delete, path, auth)).await
    }

    /// `POST path` as `auth` with a multipart upload.
    async fn upload<A: Into<Auth> + Send>(
        &self,
        path: &str,
        auth: A,
        file: Upload,
    ) -> anyhow::Result<Reply> {
        let mut call = Call::new(Method::Post, path, auth);
        call.body = Body::Upload(file);
        self.send(call).await
    }
}
