//! Reputation tokens on the wire: the issuer's keysets (NUT-01), the outputs and stake a party
//! sends with an offer or claim, and fetching the blind signatures it earned or got back.

use std::collections::BTreeMap;

use openpleb_common::db::reputation::SignedOutput;
use openpleb_common::reputation::{keys_map, UNIT};
use openpleb_common::trade::payouts::KeyProof;
use openpleb_common::trade::reputation::{
    signed_by_outputs, signed_for, signed_for_key, Reputation,
};
use openpleb_common::trade::{load_visible, Viewer};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use uuid::Uuid;

use super::ApiTags;
use crate::auth::SessionAuth;
use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// A blinded output (NUT-00 `BlindedMessage`) of the active reputation keyset, amount 1.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct BlindedOutput {
    /// Always 1.
    #[oai(validator(minimum(value = "1"), maximum(value = "1")))]
    pub amount: u64,
    /// The active reputation keyset's id (`GET /reputation/keys`).
    #[oai(validator(pattern = "^[0-9a-f]{16,66}$"))]
    pub id: String,
    /// B_, a compressed secp256k1 point (hex).
    #[oai(rename = "B_", validator(pattern = "^0[23][0-9a-f]{64}$"))]
    #[serde(rename = "B_")]
    pub b: String,
}

/// A reputation token (NUT-00 `Proof`), amount 1.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct StakedToken {
    /// Always 1.
    #[oai(validator(minimum(value = "1"), maximum(value = "1")))]
    pub amount: u64,
    /// The keyset that signed it (any, current or old).
    #[oai(validator(pattern = "^[0-9a-f]{16,66}$"))]
    pub id: String,
    /// The token's secret.
    #[oai(validator(min_length = "1", max_length = "256"))]
    pub secret: String,
    /// C, the unblinded signature (compressed point, hex).
    #[oai(rename = "C", validator(pattern = "^0[23][0-9a-f]{64}$"))]
    #[serde(rename = "C")]
    pub c: String,
}

/// What a party sends with its offer or claim.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ReputationInput {
    /// Outputs signed when you earn (completion, or a dispute won); at most
    /// `REPUTATION_EARN_PER_TRADE`.
    #[oai(default)]
    pub outputs: Vec<BlindedOutput>,
    /// Tokens you stake (at most `REPUTATION_MAX_STAKE`); spent now, returned as fresh
    /// signatures on `returnOutputs` unless you lose a dispute.
    #[oai(default)]
    pub stake: Vec<StakedToken>,
    /// One output per staked token.
    #[oai(default)]
    pub return_outputs: Vec<BlindedOutput>,
}

fn parse<T: serde::de::DeserializeOwned>(
    v: impl serde::Serialize,
    field: &'static str,
) -> Result<T, ApiError> {
    serde_json::to_value(v)
        .ok()
        .and_then(|j| serde_json::from_value(j).ok())
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_reputation_output",
                format!("{field}: not a valid point or id"),
            )
        })
}

/// The trade steps' form of what the party sent.
pub fn reputation_of(input: Option<ReputationInput>) -> Result<Reputation, ApiError> {
    let Some(r) = input else {
        return Ok(Reputation::default());
    };
    Ok(Reputation {
        outputs: r
            .outputs
            .iter()
            .map(|o| parse(o, "reputation.outputs"))
            .collect::<Result<_, _>>()?,
        stake: r
            .stake
            .iter()
            .map(|p| parse(p, "reputation.stake"))
            .collect::<Result<_, _>>()?,
        return_outputs: r
            .return_outputs
            .iter()
            .map(|o| parse(o, "reputation.returnOutputs"))
            .collect::<Result<_, _>>()?,
    })
}

/// A reputation keyset (NUT-01/02).
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct KeysetView {
    /// Keyset id.
    pub id: String,
    /// `rep`.
    pub unit: String,
    /// Signs new outputs (only the newest; older ones still verify).
    pub active: bool,
    /// Amount → public key (hex); amount `1` only.
    pub keys: BTreeMap<String, String>,
    /// Always 0.
    pub input_fee_ppk: u64,
}

/// The issuer's keysets.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct KeysView {
    /// Every keyset, oldest first.
    pub keysets: Vec<KeysetView>,
}

/// DLEQ proof of a blind signature (NUT-12).
#[derive(Debug, Clone, Object, serde::Deserialize)]
#[oai(skip_serializing_if_is_none)]
pub struct DleqView {
    /// e.
    pub e: String,
    /// s.
    pub s: String,
}

/// A blind signature (NUT-00 `BlindSignature`) with its DLEQ proof.
#[derive(Debug, Clone, Object, serde::Deserialize)]
#[oai(skip_serializing_if_is_none)]
pub struct SignatureView {
    /// 1.
    pub amount: u64,
    /// Keyset id.
    pub id: String,
    /// C_.
    #[oai(rename = "C_")]
    #[serde(rename = "C_")]
    pub c: String,
    // The DLEQ proof.
    pub dleq: Option<DleqView>,
}

/// One signed output.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct SignedView {
    /// `earn` (a new token) or `return` (a staked token back).
    pub purpose: String,
    /// The output it signs (match it to your own).
    #[oai(rename = "B_")]
    pub b: String,
    // The blind signature.
    pub signature: SignatureView,
}

/// Blinded outputs to look up.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct OutputsQuery {
    /// B_ values (hex) of outputs you sent; at most 50.
    #[oai(validator(max_items = "50", pattern = "^0[23][0-9a-f]{64}$"))]
    pub outputs: Vec<String>,
}

/// Proof of holding a party's key, for fetching its reputation signatures without a session.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct ReputationKeyProof {
    /// The payout key given when creating or claiming the offer, or the registered key
    /// revealed in its dispute (x-only hex).
    #[oai(validator(pattern = "^[0-9a-f]{64}$"))]
    pub payout_pubkey: String,
    /// Milliseconds since the epoch, within 60 s of the server's clock.
    pub timestamp: i64,
    /// BIP-340 signature by that key over
    /// SHA-256("openpleb-reputation:" ‖ offer id ‖ ":" ‖ timestamp).
    #[oai(validator(pattern = "^[0-9a-fA-F]{128}$"))]
    pub signature: String,
}

fn views(rows: Vec<SignedOutput>) -> Result<Vec<SignedView>, ApiError> {
    rows.into_iter()
        .map(|r| {
            Ok(SignedView {
                purpose: r.purpose,
                b: r.blinded_secret,
                signature: serde_json::from_value(r.signature).map_err(ApiError::internal)?,
            })
        })
        .collect()
}

/// Reputation endpoints.
#[derive(Debug)]
pub struct ReputationApi;

#[OpenApi(tag = "ApiTags::Reputation")]
impl ReputationApi {
    /// The reputation keysets
    ///
    /// NUT-01 form, unit `rep`, amount 1: unblind signatures and verify DLEQ proofs with them.
    #[oai(
        path = "/reputation/keys",
        method = "get",
        operation_id = "getReputationKeys"
    )]
    async fn keys(&self, state: Data<&AppState>) -> ApiResult<Json<KeysView>> {
        let keysets = state
            .ctx
            .reputation
            .keysets()
            .iter()
            .map(|k| KeysetView {
                id: k.id.to_string(),
                unit: UNIT.to_owned(),
                active: k.active == Some(true),
                keys: keys_map(k),
                input_fee_ppk: 0,
            })
            .collect();
        // Never fails itself; the result type documents what the edge may answer (429, 400).
        Ok(Json(KeysView { keysets }))
    }

    /// Your reputation signatures for an offer (maker and taker)
    ///
    /// What you earned (completion, a dispute won) and what came back of your stake, as blind
    /// signatures: unblind them with your blinding factors.
    #[oai(
        path = "/offers/:id/reputation",
        method = "get",
        operation_id = "getOfferReputation"
    )]
    async fn for_offer(
        &self,
        auth: SessionAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> ApiResult<Json<Vec<SignedView>>> {
        let (offer, viewer) = load_visible(&state.ctx, *id, Some(auth.0.id)).await?;
        let Viewer::Party(role) = viewer else {
            return Err(ApiError::not_found("offer_not_found", "no such offer").into());
        };
        Ok(Json(views(signed_for(&state.ctx, offer.id, role).await?)?))
    }

    /// Your reputation signatures for an offer, by key, without a session
    ///
    /// Trades outlive sessions. Proving the payout key you gave as maker or taker (or the
    /// registered key you revealed in the offer's dispute) with a signature over the offer id
    /// and a fresh timestamp returns that party's signatures; a key that is no party's gets an
    /// empty list. Errors: 400 `invalid_payout_pubkey`, `stale_timestamp`, `invalid_signature`; 404
    /// `offer_not_found`.
    #[oai(
        path = "/offers/:id/reputation/by-key",
        method = "post",
        operation_id = "getOfferReputationByKey"
    )]
    async fn for_offer_by_key(
        &self,
        state: Data<&AppState>,
        id: Path<Uuid>,
        body: Json<ReputationKeyProof>,
    ) -> ApiResult<Json<Vec<SignedView>>> {
        let proof = KeyProof {
            pubkey: &body.payout_pubkey,
            timestamp: body.timestamp,
            signature: &body.signature,
        };
        Ok(Json(views(signed_for_key(&state.ctx, *id, proof).await?)?))
    }

    /// Signatures by output, without a session
    ///
    /// Sessions end and claims lapse; the outputs you sent are yours alone. Returns the signed
    /// ones among them.
    #[oai(
        path = "/reputation/signatures",
        method = "post",
        operation_id = "getReputationSignatures"
    )]
    async fn by_outputs(
        &self,
        state: Data<&AppState>,
        body: Json<OutputsQuery>,
    ) -> ApiResult<Json<Vec<SignedView>>> {
        Ok(Json(views(
            signed_by_outputs(&state.ctx, &body.outputs).await?,
        )?))
    }
}
