//! How a dispute looks on the wire, to its parties and the admins: its stage, kind and reason,
//! messages, evidence, and the dispute statistics of a revealed key.

use chrono::{DateTime, Utc};
use openpleb_common::db::disputes::Stats;
use openpleb_common::trade::dispute::DisputeFile;
use poem_openapi::Object;
use uuid::Uuid;

/// One message of a dispute.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct MessageView {
    /// `maker`, `taker` or `admin`.
    pub author: String,
    /// `issue`, `dispute`, `counter`, `resolution` or `details` (the taker's report about the
    /// payment details).
    pub kind: String,
    /// The text (empty once deleted: see `deletedAt`).
    pub body: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// When the text was deleted, `RETENTION_TRADE_DATA_DAYS` after the offer became final.
    pub deleted_at: Option<DateTime<Utc>>,
}

/// One evidence image (fetch it from `.../evidence/{evidenceId}`).
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct EvidenceView {
    /// Id.
    pub id: Uuid,
    /// `maker` or `taker`.
    pub author: String,
    /// MIME type.
    pub content_type: String,
    /// Bytes (0 once deleted).
    pub size: i32,
    /// When.
    pub created_at: DateTime<Utc>,
    /// When the image was deleted, `RETENTION_TRADE_DATA_DAYS` after the offer became final.
    pub deleted_at: Option<DateTime<Utc>>,
}

/// A dispute as its parties see it.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct DisputeView {
    /// `waiting_taker`, `waiting_maker`, `waiting_admin` or `resolved`.
    pub stage: String,
    /// `receipt` (the maker marked an issue with the receipt) or `payment_details` (the taker
    /// reported that the payment details do not work).
    pub kind: String,
    /// `not_received`, `wrong_amount` or `other` (receipt); `details_not_working`
    /// (payment details).
    pub reason: String,
    /// The issue was raised.
    pub opened_at: DateTime<Utc>,
    /// The taker disputed.
    pub disputed_at: Option<DateTime<Utc>>,
    /// The maker countered (or stayed silent).
    pub countered_at: Option<DateTime<Utc>>,
    /// Settled.
    pub resolved_at: Option<DateTime<Utc>>,
    /// `MAKER_WINS`, `TAKER_WINS`, `RETURN`, `SPLIT` or `BAD_DETAILS`.
    pub resolution: Option<String>,
    /// `taker_forfeit`, `taker_silence`, `maker_forfeit` or `admin`.
    pub resolved_by: Option<String>,
    /// Messages, oldest first.
    pub messages: Vec<MessageView>,
    /// Evidence, oldest first.
    pub evidence: Vec<EvidenceView>,
}

impl From<&DisputeFile> for DisputeView {
    fn from(f: &DisputeFile) -> Self {
        let d = &f.dispute;
        Self {
            stage: d.stage.as_str().to_owned(),
            kind: d.kind.as_str().to_owned(),
            reason: d.reason.as_str().to_owned(),
            opened_at: d.opened_at,
            disputed_at: d.disputed_at,
            countered_at: d.countered_at,
            resolved_at: d.resolved_at,
            resolution: d.resolution.map(|r| r.as_str().to_owned()),
            resolved_by: d.resolved_by.map(|r| r.as_str().to_owned()),
            messages: f
                .messages
                .iter()
                .map(|m| MessageView {
                    author: m.author.as_str().to_owned(),
                    kind: m.kind.as_str().to_owned(),
                    body: m.body.clone().unwrap_or_default(),
                    created_at: m.created_at,
                    deleted_at: m.deleted_at,
                })
                .collect(),
            evidence: f
                .evidence
                .iter()
                .map(|e| EvidenceView {
                    id: e.id,
                    author: e.author.as_str().to_owned(),
                    content_type: e.content_type.clone(),
                    size: e.size,
                    created_at: e.created_at,
                    deleted_at: e.deleted_at,
                })
                .collect(),
        }
    }
}

/// Dispute statistics of one registered key, counted from its reveals.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct StatsView {
    /// Issues it raised as a maker.
    pub issues_raised: i64,
    /// Won as a maker.
    pub won_as_maker: i64,
    /// Lost as a maker.
    pub lost_as_maker: i64,
    /// Forfeited as a maker.
    pub forfeited_as_maker: i64,
    /// Disputes it opened as a taker.
    pub disputes_opened: i64,
    /// Won as a taker.
    pub won_as_taker: i64,
    /// Lost as a taker.
    pub lost_as_taker: i64,
}

impl From<Stats> for StatsView {
    fn from(s: Stats) -> Self {
        Self {
            issues_raised: s.issues_raised,
            won_as_maker: s.won_as_maker,
            lost_as_maker: s.lost_as_maker,
            forfeited_as_maker: s.forfeited_as_maker,
            disputes_opened: s.disputes_opened,
            won_as_taker: s.won_as_taker,
            lost_as_taker: s.lost_as_taker,
        }
    }
}
