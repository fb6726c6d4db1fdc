//! The API contract's breaking-change check.
//!
//! `openapi.yaml` and `openapi-admin.yaml` are what clients are generated from, so a change
//! that breaks a client (an operation gone, a new required field, a narrowed enum, a success
//! status changed, a schema renamed that generated code names) must never reach a release
//! unannounced. [`diff`] compares a released document with the current one and lists every
//! change it can judge, each [`Severity::Breaking`], [`Severity::Warning`] or
//! [`Severity::Info`]; [`judge`] applies the versioning rule to that list: a breaking change
//! needs a major bump of `info.version` (a minor bump while the version is 0.x), and the
//! current version has its entry in `CHANGELOG.md`.
//!
//! Written here rather than taken from a registry: the OpenAPI diff tools that are kept up
//! are Go binaries (or npm wrappers that download one), which this project's machines cannot
//! fetch, and a check over the two documents in Rust runs in `cargo test` with the rest.
//!
//! Directions matter. What a client sends (parameters, request bodies) may widen but not
//! narrow; what it receives (response bodies) may gain optional fields but not lose fields or
//! change their meaning. A schema used both ways is judged both ways. An enum in a response
//! counts as changed either way, because generated clients reject values they do not know.

mod operations;
mod schema;
mod version;

use serde_json::Value;

pub use version::{judge, Verdict, Version};

/// How much a change matters to an existing client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// An addition or a change no client notices.
    Info,
    /// May break some clients (generated code naming a removed request field, say), but a
    /// client that keeps sending what it sent keeps working.
    Warning,
    /// Breaks clients that worked against the released document.
    Breaking,
}

/// What changed; tests and the report match on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An operation (path and method) is gone.
    OperationRemoved,
    /// A new operation.
    OperationAdded,
    /// A request parameter is gone.
    ParameterRemoved,
    /// A parameter is new and required, or was optional and is now required.
    ParameterRequired,
    /// A new optional parameter.
    ParameterAdded,
    /// A request body is now required.
    RequestBodyRequired,
    /// The operation no longer takes a request body.
    RequestBodyRemoved,
    /// A request or response media type is gone.
    MediaTypeRemoved,
    /// The credentials an operation takes changed.
    SecurityChanged,
    /// A success status the operation answered with is gone (or changed).
    SuccessStatusRemoved,
    /// A new success status beside the old ones.
    SuccessStatusAdded,
    /// A schema that operations referenced is gone or renamed.
    SchemaRemoved,
    /// A place that named one schema now names another (or an inline one).
    SchemaReplaced,
    /// A schema's type changed.
    TypeChanged,
    /// A schema's format changed.
    FormatChanged,
    /// A request object has a new required property, or a property became required.
    RequiredPropertyAdded,
    /// A request object's property is gone (the server ignores it now).
    RequestPropertyRemoved,
    /// A response object's property is gone.
    ResponsePropertyRemoved,
    /// A response object's property may now be omitted.
    PropertyNoLongerRequired,
    /// A new optional property.
    PropertyAdded,
    /// A request enum lost values.
    EnumNarrowed,
    /// A response enum lost values.
    EnumValueRemoved,
    /// A response enum gained values (or stopped being an enum).
    EnumValueAdded,
    /// A request bound got tighter (maximum, minimum, lengths, items).
    ConstraintNarrowed,
    /// A request pattern changed; whether it narrowed cannot be told.
    PatternChanged,
    /// `oneOf`, `anyOf` or `allOf` changed; not compared further.
    CompositionChanged,
}

/// One change between the released document and the current one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// How much it matters.
    pub severity: Severity,
    /// What it is.
    pub kind: Kind,
    /// Where: the operation and the path into its schema, or the component.
    pub at: String,
    /// What happened, for a person.
    pub what: String,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let level = match self.severity {
            Severity::Breaking => "BREAKING",
            Severity::Warning => "warning",
            Severity::Info => "info",
        };
        write!(f, "{level}: {}: {}", self.at, self.what)
    }
}

/// Every change from `old` (the released document) to `new` (the current one), breaking
/// ones first.
pub fn diff(old: &Value, new: &Value) -> Vec<Change> {
    let mut changes = operations::compare(old, new);
    changes.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.at.cmp(&b.at)));
    changes
}

/// A document read from YAML (or JSON, a subset of YAML).
pub fn parse(text: &str) -> Result<Value, String> {
    serde_yaml::from_str(text).map_err(|e| e.to_string())
}
