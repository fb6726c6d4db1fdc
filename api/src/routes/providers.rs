//! Fiat providers: the public list and the admin's create, update and delete.

use openpleb_common::db::{self, providers};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use uuid::Uuid;

use super::ApiTags;
use crate::auth::AdminAuth;
use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// How the taker pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum ProviderKind {
    /// A bank transfer to an account.
    BankTransfer,
    /// A payment QR code.
    PaymentQr,
}

impl ProviderKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::BankTransfer => "bank_transfer",
            Self::PaymentQr => "payment_qr",
        }
    }
}

/// A fiat provider.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ProviderView {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// `bank_transfer` or `payment_qr`.
    pub kind: String,
    /// Icon URL.
    pub icon_url: Option<String>,
    /// Offered to makers.
    pub active: bool,
}

impl From<providers::Provider> for ProviderView {
    fn from(p: providers::Provider) -> Self {
        Self {
            id: p.id,
            name: p.name,
            kind: p.kind,
            icon_url: p.icon_url,
            active: p.active,
        }
    }
}

/// Create or replace a provider.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ProviderInput {
    /// Name, unique.
    #[oai(validator(min_length = "1", max_length = "100"))]
    pub name: String,
    // Kind.
    pub kind: ProviderKind,
    /// Icon URL (https).
    #[oai(validator(max_length = "2048", pattern = "^https://"))]
    pub icon_url: Option<String>,
    /// Offered to makers (default true).
    pub active: Option<bool>,
}

#[derive(Debug, ApiResponse)]
enum Created {
    /// Created.
    #[oai(status = 201)]
    Ok(Json<ProviderView>),
}

#[derive(Debug, ApiResponse)]
enum Deleted {
    /// Deleted.
    #[oai(status = 204)]
    Ok,
}

fn name_taken(e: &sqlx::Error) -> Option<ApiError> {
    db::violated_unique(e)
        .map(|_| ApiError::conflict("provider_name_taken", "a provider with this name exists"))
}

/// Public provider endpoints.
#[derive(Debug)]
pub struct ProvidersApi;

#[OpenApi(tag = "ApiTags::Providers")]
impl ProvidersApi {
    /// Active fiat providers
    #[oai(
        path = "/fiat-providers",
        method = "get",
        operation_id = "listFiatProviders"
    )]
    async fn list(&self, state: Data<&AppState>) -> ApiResult<Json<Vec<ProviderView>>> {
        let list = providers::list(&state.ctx.pool, false).await?;
        Ok(Json(list.into_iter().map(Into::into).collect()))
    }
}

/// Admin provider endpoints.
#[derive(Debug)]
pub struct AdminProvidersApi;

#[OpenApi(tag = "ApiTags::Admin")]
impl AdminProvidersApi {
    /// Create a fiat provider
    #[oai(
        path = "/admin/fiat-providers",
        method = "post",
        operation_id = "createFiatProvider"
    )]
    async fn create(
        &self,
        auth: AdminAuth,
        state: Data<&AppState>,
        body: Json<ProviderInput>,
    ) -> ApiResult<Created> {
        let b = body.0;
        let created = providers::create(
            &state.ctx.pool,
            &b.name,
            b.kind.as_str(),
            b.icon_url.as_deref(),
            b.active.unwrap_or(true),
        )
        .await;
        match created {
            Ok(p) => {
                super::audit(&state, &auth.0, "create_provider", p.id, Some(&p.name)).await?;
                Ok(Created::Ok(Json(p.into())))
            }
            Err(e) => Err(name_taken(&e).unwrap_or_else(|| e.into()).into()),
        }
    }

    /// All fiat providers, inactive included
    #[oai(
        path = "/admin/fiat-providers",
        method = "get",
        operation_id = "listAllFiatProviders"
    )]
    async fn list_all(
        &self,
        _auth: AdminAuth,
        state: Data<&AppState>,
    ) -> ApiResult<Json<Vec<ProviderView>>> {
        let list = providers::list(&state.ctx.pool, true).await?;
        Ok(Json(list.into_iter().map(Into::into).collect()))
    }

    /// Replace a fiat provider
    #[oai(
        path = "/admin/fiat-providers/:id",
        method = "put",
        operation_id = "updateFiatProvider"
    )]
    async fn update(
        &self,
        auth: AdminAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        body: Json<ProviderInput>,
    ) -> ApiResult<Json<ProviderView>> {
        let b = body.0;
        let updated = providers::update(
            &state.ctx.pool,
            *id,
            &b.name,
            b.kind.as_str(),
            b.icon_url.as_deref(),
            b.active.unwrap_or(true),
        )
        .await;
        match updated {
            Ok(Some(p)) => {
                super::audit(&state, &auth.0, "update_provider", p.id, Some(&p.name)).await?;
                Ok(Json(p.into()))
            }
            Ok(None) => Err(ApiError::not_found("provider_not_found", "no such provider").into()),
            Err(e) => Err(name_taken(&e).unwrap_or_else(|| e.into()).into()),
        }
    }

    /// Delete a fiat provider no offer uses
    ///
    /// 409 `provider_in_use` when an offer refers to it: deactivate it instead.
    #[oai(
        path = "/admin/fiat-providers/:id",
        method = "delete",
        operation_id = "deleteFiatProvider"
    )]
    async fn delete(
        &self,
        auth: AdminAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> ApiResult<Deleted> {
        match providers::delete(&state.ctx.pool, *id).await {
            Ok(true) => {
                super::audit(&state, &auth.0, "delete_provider", *id, None).await?;
                Ok(Deleted::Ok)
            }
            Ok(false) => Err(ApiError::not_found("provider_not_found", "no such provider").into()),
            Err(e) if db::is_foreign_key_violation(&e) => Err(ApiError::conflict(
                "provider_in_use",
                "offers refer to this provider; deactivate it instead",
            )
            .into()),
            Err(e) => Err(ApiError::from(e).into()),
        }
    }
}
