//! Comparing two schemas in the direction they travel: request schemas may widen, response
//! schemas may gain optional properties. `$ref`s are followed into each document's
//! components, and each pair of named schemas is compared once per direction (recursive
//! schemas end).

use std::collections::{BTreeSet, HashSet};

use serde_json::Value;

use crate::{Change, Kind, Severity};

/// Which way a schema travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Dir {
    /// Sent by the client.
    Request,
    /// Sent by the server.
    Response,
}

const REF_PREFIX: &str = "#/components/schemas/";

/// Stands in for a missing map (no properties, no responses) for as long as the documents live.
pub(crate) static EMPTY: std::sync::LazyLock<serde_json::Map<String, Value>> =
    std::sync::LazyLock::new(serde_json::Map::new);

/// The name a `$ref` schema points at, if it is one.
pub(crate) fn ref_name(schema: &Value) -> Option<&str> {
    schema.get("$ref")?.as_str()?.strip_prefix(REF_PREFIX)
}

/// `{"allOf": [X, {"description": ..}]}` (how generators wrap a `$ref` to give it a
/// description) is `X`: parts that only annotate are not part of the type.
fn single_all_of(schema: &Value) -> &Value {
    const ANNOTATIONS: [&str; 5] = ["description", "title", "example", "deprecated", "default"];
    let Some(parts) = schema.get("allOf").and_then(Value::as_array) else {
        return schema;
    };
    let typed: Vec<&Value> = parts
        .iter()
        .filter(|p| {
            p.as_object()
                .is_some_and(|m| m.keys().any(|k| !ANNOTATIONS.contains(&k.as_str())))
        })
        .collect();
    match typed[..] {
        [only] if schema.get("type").is_none() => only,
        _ => schema,
    }
}

/// Compares schemas of two documents, collecting changes.
pub(crate) struct Walker<'a> {
    old: &'a Value,
    new: &'a Value,
    seen: HashSet<(String, String, Dir)>,
    pub(crate) changes: Vec<Change>,
}

impl<'a> Walker<'a> {
    pub(crate) fn new(old: &'a Value, new: &'a Value) -> Self {
        Self {
            old,
            new,
            seen: HashSet::new(),
            changes: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, severity: Severity, kind: Kind, at: &str, what: String) {
        self.changes.push(Change {
            severity,
            kind,
            at: at.to_owned(),
            what,
        });
    }

    /// The schema itself, `$ref`s followed (a missing target is `None`).
    fn resolve(doc: &'a Value, schema: &'a Value) -> Option<&'a Value> {
        let mut current = schema;
        for _ in 0..32 {
            match ref_name(current) {
                Some(name) => current = doc.pointer(&format!("/components/schemas/{name}"))?,
                None => return Some(current),
            }
        }
        None
    }

    /// Compares the schema `old` had at `at` with the one `new` has there.
    pub(crate) fn schema(&mut self, at: &str, old: &'a Value, new: &'a Value, dir: Dir) {
        let (old, new) = (single_all_of(old), single_all_of(new));
        let (old_name, new_name) = (ref_name(old), ref_name(new));
        if old_name != new_name && old_name.is_some() {
            let now = new_name.map_or("an inline schema".to_owned(), |n| format!("`{n}`"));
            self.push(
                Severity::Breaking,
                Kind::SchemaReplaced,
                at,
                format!(
                    "names {now} instead of `{}` (generated clients name the type)",
                    old_name.unwrap_or_default()
                ),
            );
        }
        if let (Some(o), Some(n)) = (old_name, new_name) {
            if !self.seen.insert((o.to_owned(), n.to_owned(), dir)) {
                return;
            }
        }
        let (Some(old), Some(new)) = (Self::resolve(self.old, old), Self::resolve(self.new, new))
        else {
            // A dangling reference is reported as a removed schema by the caller.
            return;
        };
        let ty = |s: &Value| s.get("type").and_then(Value::as_str).map(str::to_owned);
        if ty(old) != ty(new) {
            let show = |t: Option<String>| t.unwrap_or_else(|| "untyped".to_owned());
            self.push(
                Severity::Breaking,
                Kind::TypeChanged,
                at,
                format!("type {} is now {}", show(ty(old)), show(ty(new))),
            );
            return;
        }
        let format = |s: &Value| s.get("format").cloned();
        if format(old) != format(new) {
            self.push(
                Severity::Breaking,
                Kind::FormatChanged,
                at,
                format!(
                    "format {} is now {}",
                    format(old).unwrap_or(Value::Null),
                    format(new).unwrap_or(Value::Null)
                ),
            );
        }
        self.enums(at, old, new, dir);
        if dir == Dir::Request {
            self.bounds(at, old, new);
        }
        self.composition(at, old, new);
        self.properties(at, old, new, dir);
        if let (Some(o), Some(n)) = (old.get("items"), new.get("items")) {
            self.schema(&format!("{at}[]"), o, n, dir);
        }
        match (
            old.get("additionalProperties"),
            new.get("additionalProperties"),
        ) {
            (Some(o), Some(n)) if o.is_object() && n.is_object() => {
                self.schema(&format!("{at}.*"), o, n, dir);
            }
            _ => {}
        }
    }

    fn enums(&mut self, at: &str, old: &Value, new: &Value, dir: Dir) {
        let values = |s: &Value| -> Option<BTreeSet<String>> {
            Some(
                s.get("enum")?
                    .as_array()?
                    .iter()
                    .map(Value::to_string)
                    .collect(),
            )
        };
        match (dir, values(old), values(new)) {
            (Dir::Request, old_values, Some(new_values)) => {
                let gone: Vec<String> = match old_values {
                    Some(o) => o.difference(&new_values).cloned().collect(),
                    None => vec!["(any value, now an enum)".to_owned()],
                };
                if !gone.is_empty() {
                    self.push(
                        Severity::Breaking,
                        Kind::EnumNarrowed,
                        at,
                        format!("no longer accepts {}", gone.join(", ")),
                    );
                }
            }
            (Dir::Response, Some(o), new_values) => {
                let gone: Vec<String> = match &new_values {
                    Some(n) => o.difference(n).cloned().collect(),
                    None => Vec::new(),
                };
                if !gone.is_empty() {
                    self.push(
                        Severity::Breaking,
                        Kind::EnumValueRemoved,
                        at,
                        format!("no longer answers {}", gone.join(", ")),
                    );
                }
                let added: Vec<String> = match &new_values {
                    Some(n) => n.difference(&o).cloned().collect(),
                    None => vec!["(any value, no longer an enum)".to_owned()],
                };
                if !added.is_empty() {
                    self.push(
                        Severity::Breaking,
                        Kind::EnumValueAdded,
                        at,
                        format!(
                            "may now answer {} (generated clients reject values they do not know)",
                            added.join(", ")
                        ),
                    );
                }
            }
            _ => {}
        }
    }

    /// Tighter bounds on what a client sends.
    fn bounds(&mut self, at: &str, old: &Value, new: &Value) {
        let number = |s: &Value, k: &str| s.get(k).and_then(Value::as_f64);
        // (keyword, whether a larger value is tighter)
        for (key, larger_is_tighter) in [
            ("maximum", false),
            ("maxLength", false),
            ("maxItems", false),
            ("minimum", true),
            ("minLength", true),
            ("minItems", true),
        ] {
            let tighter = match (number(old, key), number(new, key)) {
                (None, Some(_)) => true,
                (Some(o), Some(n)) => (n > o) == larger_is_tighter && n != o,
                _ => false,
            };
            if tighter {
                self.push(
                    Severity::Breaking,
                    Kind::ConstraintNarrowed,
                    at,
                    format!(
                        "{key} {} is now {}",
                        old.get(key).unwrap_or(&Value::Null),
                        new.get(key).unwrap_or(&Value::Null)
                    ),
                );
            }
        }
        if old.get("pattern") != new.get("pattern") && new.get("pattern").is_some() {
            self.push(
                Severity::Warning,
                Kind::PatternChanged,
                at,
                format!(
                    "pattern {} is now {}",
                    old.get("pattern").unwrap_or(&Value::Null),
                    new.get("pattern").unwrap_or(&Value::Null)
                ),
            );
        }
    }

    fn composition(&mut self, at: &str, old: &Value, new: &Value) {
        for key in ["oneOf", "anyOf", "allOf"] {
            if old.get(key) != new.get(key) {
                self.push(
                    Severity::Warning,
                    Kind::CompositionChanged,
                    at,
                    format!("`{key}` changed; not compared further"),
                );
            }
        }
    }

    fn properties(&mut self, at: &str, old: &'a Value, new: &'a Value, dir: Dir) {
        let props = |s: &'a Value| s.get("properties").and_then(Value::as_object);
        let (old_props, new_props) = (props(old), props(new));
        if old_props.is_none() && new_props.is_none() {
            return;
        }
        let (old_props, new_props) = (old_props.unwrap_or(&EMPTY), new_props.unwrap_or(&EMPTY));
        let required = |s: &Value| -> BTreeSet<String> {
            s.get("required")
                .and_then(Value::as_array)
                .map(|r| {
                    r.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let (old_required, new_required) = (required(old), required(new));
        for (name, old_schema) in old_props {
            let here = format!("{at}.{name}");
            let Some(new_schema) = new_props.get(name) else {
                match dir {
                    Dir::Request => self.push(
                        Severity::Warning,
                        Kind::RequestPropertyRemoved,
                        &here,
                        "removed (the server ignores it now; generated code naming it breaks)"
                            .to_owned(),
                    ),
                    Dir::Response => self.push(
                        Severity::Breaking,
                        Kind::ResponsePropertyRemoved,
                        &here,
                        "removed from the response".to_owned(),
                    ),
                }
                continue;
            };
            match dir {
                Dir::Request if new_required.contains(name) && !old_required.contains(name) => {
                    self.push(
                        Severity::Breaking,
                        Kind::RequiredPropertyAdded,
                        &here,
                        "now required".to_owned(),
                    );
                }
                Dir::Response if old_required.contains(name) && !new_required.contains(name) => {
                    self.push(
                        Severity::Breaking,
                        Kind::PropertyNoLongerRequired,
                        &here,
                        "may now be omitted from the response".to_owned(),
                    );
                }
                _ => {}
            }
            self.schema(&here, old_schema, new_schema, dir);
        }
        for name in new_props.keys().filter(|n| !old_props.contains_key(*n)) {
            let here = format!("{at}.{name}");
            if dir == Dir::Request && new_required.contains(name) {
                self.push(
                    Severity::Breaking,
                    Kind::RequiredPropertyAdded,
                    &here,
                    "a new required property".to_owned(),
                );
            } else {
                self.push(
                    Severity::Info,
                    Kind::PropertyAdded,
                    &here,
                    "a new optional property".to_owned(),
                );
            }
        }
    }
}
