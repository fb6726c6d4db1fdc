//! The transport of a backend served in this process (the api tests' harness, the bench's
//! stack): requests go through poem's test client to the real apps, every middleware included,
//! without a socket; BATs, payments and redemptions go to the stack's own mint.

use anyhow::Context;
use async_trait::async_trait;
use cdk::nuts::SecretKey;
use poem::endpoint::BoxEndpoint;
use poem::test::{TestClient, TestForm, TestFormField};

use super::transport::{Auth, Body, Call, Reply, Transport};
use crate::stack::AuthStack;
use crate::Trader;

/// The test client of one app.
pub type Client = TestClient<BoxEndpoint<'static>>;

/// The admin token of [`crate::test_config`].
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// The API's base path in [`crate::test_config`].
pub const BASE: &str = "/api/v1";

/// A backend in this process: its two apps and its mint and issuer. Implementing this gives
/// [`Transport`].
pub trait InProcess: Send + Sync {
    /// The public app's client.
    fn public_client(&self) -> &Client;
    /// The admin app's client.
    fn admin_client(&self) -> &Client;
    /// The mint and the OIDC issuer, if it has them (apps tested without a mint have not).
    fn auth_stack(&self) -> Option<&AuthStack>;
}

/// Sends `call` through `client`, as the app answers it.
pub async fn send(client: &Client, call: Call) -> Reply {
    let method = poem::http::Method::from_bytes(call.method.as_str().as_bytes())
        .unwrap_or(poem::http::Method::GET);
    let mut req = client.request(method, format!("{BASE}{}", call.path));
    match &call.auth {
        Auth::Anonymous => {}
        Auth::Bearer(token) => req = req.header("Authorization", format!("Bearer {token}")),
        Auth::Admin => req = req.header("Authorization", format!("Bearer {ADMIN_TOKEN}")),
    }
    for (name, value) in &call.headers {
        req = req.header(name.as_str(), value.as_str());
    }
    req = match call.body {
        Body::Empty => req,
        Body::Json(v) => req.body_json(&v),
        Body::Upload(file) => {
            let mut form = TestForm::new().field(
                TestFormField::bytes(file.bytes)
                    .name("image")
                    .filename(file.filename)
                    .content_type(file.content_type),
            );
            if let Some(note) = file.note {
                form = form.text("note", note);
            }
            req.multipart(form)
        }
    };
    let resp = req.send().await;
    let status = resp.0.status().as_u16();
    let headers = resp
        .0
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let text = resp.0.into_body().into_string().await.unwrap_or_default();
    Reply {
        headers,
        ..Reply::from_text(status, text)
    }
}

#[async_trait]
impl<S: InProcess> Transport for S {
    // Without a mint there are no BATs, payments or tokens: those steps fail, saying so.
    async fn send(&self, call: Call) -> anyhow::Result<Reply> {
        let client = if call.is_admin() {
            self.admin_client()
        } else {
            self.public_client()
        };
        Ok(send(client, call).await)
    }

    async fn bats(&self, trader: &Trader, n: u64) -> anyhow::Result<Vec<String>> {
        let stack = self.auth_stack().context("no mint")?;
        let cat = stack
            .login(trader)
            .await
            .map_err(|s| anyhow::anyhow!("login: {s}"))?;
        stack.mint_bats(&cat, n).await
    }

    async fn pay_invoice(&self, invoice: &str, sats: u64) -> anyhow::Result<()> {
        let stack = self.auth_stack().context("no mint")?;
        if stack.manual_payments {
            stack.mint.pay_invoice(invoice, sats).await?;
        }
        Ok(())
    }

    async fn redeem(&self, tokens: &[String], key: &SecretKey) -> anyhow::Result<u64> {
        let url = &self.auth_stack().context("no mint")?.mint.url;
        let mut total = 0;
        for token in tokens {
            total += crate::fixtures::redeem(url, token, key).await?;
        }
        Ok(total)
    }
}

/// Two apps of one state and, where there is one, the mint and issuer: the backend of a test
/// that builds its own app state.
pub struct Apps {
    /// The public app.
    pub public: Client,
    /// The admin app.
    pub admin: Client,
    /// The mint and issuer, if any.
    pub auth: Option<AuthStack>,
}

impl InProcess for Apps {
    fn public_client(&self) -> &Client {
        &self.public
    }
    fn admin_client(&self) -> &Client {
        &self.admin
    }
    fn auth_stack(&self) -> Option<&AuthStack> {
        self.auth.as_ref()
    }
}
