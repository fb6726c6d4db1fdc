//! Comparing the operations of two documents: which exist, what they take (parameters, body,
//! credentials) and what they answer (success statuses and their bodies), and which named
//! schemas the released operations relied on.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::schema::{ref_name, Dir, Walker, EMPTY};
use crate::{Change, Kind, Severity};

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// `/offers/{id}/claim` and `/offers/{offerId}/claim` are one URL: parameters named alike.
fn normalised(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            c if !in_param => out.push(c),
            _ => {}
        }
    }
    out
}

/// The path parameters' names in the order the template has them.
fn path_params(path: &str) -> Vec<String> {
    path.split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_owned()))
        .collect()
}

struct Operation<'a> {
    path: &'a str,
    method: &'a str,
    op: &'a Value,
}

impl Operation<'_> {
    fn label(&self) -> String {
        format!("{} {}", self.method.to_uppercase(), self.path)
    }
}

fn operations(doc: &Value) -> BTreeMap<(String, String), Operation<'_>> {
    let mut ops = BTreeMap::new();
    for (path, item) in doc
        .get("paths")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                ops.insert(
                    (normalised(path), method.to_owned()),
                    Operation { path, method, op },
                );
            }
        }
    }
    ops
}

/// Every change between the two documents' operations and the schemas they use.
pub(crate) fn compare(old: &Value, new: &Value) -> Vec<Change> {
    let mut w = Walker::new(old, new);
    let (old_ops, new_ops) = (operations(old), operations(new));
    for (key, o) in &old_ops {
        match new_ops.get(key) {
            Some(n) => operation(&mut w, o, n),
            None => w.push(
                Severity::Breaking,
                Kind::OperationRemoved,
                &o.label(),
                "the operation is gone".to_owned(),
            ),
        }
    }
    for (key, n) in &new_ops {
        if !old_ops.contains_key(key) {
            w.push(
                Severity::Info,
                Kind::OperationAdded,
                &n.label(),
                "a new operation".to_owned(),
            );
        }
    }
    removed_schemas(&mut w, old, new);
    w.changes
}

fn operation<'a>(w: &mut Walker<'a>, o: &Operation<'a>, n: &Operation<'a>) {
    let at = n.label();
    parameters(w, &at, o, n);
    request_body(w, &at, o.op.get("requestBody"), n.op.get("requestBody"));
    responses(w, &at, o.op, n.op);
    security(w, &at, o.op, n.op);
}

/// A parameter's identity: path parameters by position (their names are not sent), others by
/// where and name.
fn parameter_key(path: &str, p: &Value) -> Option<(String, String)> {
    let place = p.get("in")?.as_str()?;
    let name = p.get("name")?.as_str()?;
    if place == "path" {
        let index = path_params(path).iter().position(|x| x == name)?;
        return Some((place.to_owned(), format!("#{index}")));
    }
    Some((place.to_owned(), name.to_owned()))
}

fn parameters<'a>(w: &mut Walker<'a>, at: &str, o: &Operation<'a>, n: &Operation<'a>) {
    let list = |op: &Operation<'a>| -> BTreeMap<(String, String), &'a Value> {
        op.op
            .get("parameters")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| parameter_key(op.path, p).map(|k| (k, p)))
            .collect()
    };
    let (old_params, new_params) = (list(o), list(n));
    let required = |p: &Value| p.get("required").and_then(Value::as_bool) == Some(true);
    let name = |p: &Value| {
        p.get("name")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned()
    };
    for (key, op) in &old_params {
        let here = format!("{at} {} parameter `{}`", key.0, name(op));
        let Some(np) = new_params.get(key) else {
            w.push(
                Severity::Warning,
                Kind::ParameterRemoved,
                &here,
                "removed (generated code passing it breaks)".to_owned(),
            );
            continue;
        };
        if required(np) && !required(op) {
            w.push(
                Severity::Breaking,
                Kind::ParameterRequired,
                &here,
                "now required".to_owned(),
            );
        }
        if let (Some(os), Some(ns)) = (op.get("schema"), np.get("schema")) {
            w.schema(&here, os, ns, Dir::Request);
        }
    }
    for (key, np) in &new_params {
        if old_params.contains_key(key) {
            continue;
        }
        let here = format!("{at} {} parameter `{}`", key.0, name(np));
        if required(np) {
            w.push(
                Severity::Breaking,
                Kind::ParameterRequired,
                &here,
                "a new required parameter".to_owned(),
            );
        } else {
            w.push(
                Severity::Info,
                Kind::ParameterAdded,
                &here,
                "a new optional parameter".to_owned(),
            );
        }
    }
}

fn request_body<'a>(w: &mut Walker<'a>, at: &str, o: Option<&'a Value>, n: Option<&'a Value>) {
    let here = format!("{at} request body");
    let required = |b: &Value| b.get("required").and_then(Value::as_bool) == Some(true);
    match (o, n) {
        (None, Some(n)) if required(n) => w.push(
            Severity::Breaking,
            Kind::RequestBodyRequired,
            &here,
            "a body is now required".to_owned(),
        ),
        (Some(_), None) => w.push(
            Severity::Warning,
            Kind::RequestBodyRemoved,
            &here,
            "the operation no longer takes a body".to_owned(),
        ),
        (Some(o), Some(n)) => {
            if required(n) && !required(o) {
                w.push(
                    Severity::Breaking,
                    Kind::RequestBodyRequired,
                    &here,
                    "the body is now required".to_owned(),
                );
            }
            media(w, &here, o, n, Dir::Request);
        }
        _ => {}
    }
}

/// Compares the media types of a body; each old one must stay.
fn media<'a>(w: &mut Walker<'a>, at: &str, o: &'a Value, n: &'a Value, dir: Dir) {
    let content = |b: &'a Value| b.get("content").and_then(Value::as_object);
    let (Some(old_content), new_content) = (content(o), content(n)) else {
        return;
    };
    for (media_type, om) in old_content {
        let here = format!("{at} ({media_type})");
        match new_content.and_then(|c| c.get(media_type)) {
            None => w.push(
                Severity::Breaking,
                Kind::MediaTypeRemoved,
                &here,
                "media type no longer offered".to_owned(),
            ),
            Some(nm) => {
                if let (Some(os), Some(ns)) = (om.get("schema"), nm.get("schema")) {
                    w.schema(&here, os, ns, dir);
                }
            }
        }
    }
}

fn responses<'a>(w: &mut Walker<'a>, at: &str, o: &'a Value, n: &'a Value) {
    let list = |op: &'a Value| op.get("responses").and_then(Value::as_object);
    let (old_resp, new_resp) = (list(o).unwrap_or(&EMPTY), list(n).unwrap_or(&EMPTY));
    let success = |codes: &serde_json::Map<String, Value>| -> BTreeSet<String> {
        codes
            .keys()
            .filter(|c| c.starts_with('2'))
            .cloned()
            .collect()
    };
    let (old_ok, new_ok) = (success(old_resp), success(new_resp));
    let now = new_ok.iter().cloned().collect::<Vec<_>>().join(", ");
    for code in old_ok.difference(&new_ok) {
        w.push(
            Severity::Breaking,
            Kind::SuccessStatusRemoved,
            &format!("{at} response {code}"),
            format!("no longer answered on success (now: {now})"),
        );
    }
    for code in new_ok.difference(&old_ok) {
        w.push(
            Severity::Warning,
            Kind::SuccessStatusAdded,
            &format!("{at} response {code}"),
            "a new success status beside the old (clients may not read it)".to_owned(),
        );
    }
    // Every status both have, errors included: their bodies are what clients parse.
    for (code, or) in old_resp {
        if let Some(nr) = new_resp.get(code) {
            media(w, &format!("{at} response {code}"), or, nr, Dir::Response);
        }
    }
}

/// The ways an operation may be called: each a set of security schemes (none: no credentials).
fn security_alternatives(op: &Value) -> BTreeSet<BTreeSet<String>> {
    match op.get("security").and_then(Value::as_array) {
        None => BTreeSet::from([BTreeSet::new()]),
        Some(list) => list
            .iter()
            .map(|req| {
                req.as_object()
                    .map(|m| m.keys().cloned().collect())
                    .unwrap_or_default()
            })
            .collect(),
    }
}

fn security(w: &mut Walker<'_>, at: &str, o: &Value, n: &Value) {
    let (old_ways, new_ways) = (security_alternatives(o), security_alternatives(n));
    let gone: Vec<String> = old_ways
        .difference(&new_ways)
        .map(|way| match way.is_empty() {
            true => "no credentials".to_owned(),
            false => way.iter().cloned().collect::<Vec<_>>().join(" + "),
        })
        .collect();
    if !gone.is_empty() {
        w.push(
            Severity::Breaking,
            Kind::SecurityChanged,
            &format!("{at} security"),
            format!("no longer callable with {}", gone.join("; ")),
        );
    }
}

/// Every schema name `doc`'s operations reach, through other schemas too.
fn referenced(doc: &Value) -> BTreeSet<String> {
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(name) = ref_name(v) {
                    out.push(name.to_owned());
                }
                m.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut todo = Vec::new();
    if let Some(paths) = doc.get("paths") {
        refs(paths, &mut todo);
    }
    let mut found = BTreeSet::new();
    while let Some(name) = todo.pop() {
        if found.insert(name.clone()) {
            if let Some(schema) = doc.pointer(&format!("/components/schemas/{name}")) {
                refs(schema, &mut todo);
            }
        }
    }
    found
}

fn removed_schemas(w: &mut Walker<'_>, old: &Value, new: &Value) {
    let names = |doc: &Value| -> BTreeSet<String> {
        doc.pointer("/components/schemas")
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    let (old_names, new_names) = (names(old), names(new));
    let used = referenced(old);
    for name in old_names.difference(&new_names) {
        let at = format!("components.schemas.{name}");
        if used.contains(name) {
            w.push(
                Severity::Breaking,
                Kind::SchemaRemoved,
                &at,
                "removed or renamed (generated clients name it)".to_owned(),
            );
        } else {
            w.push(
                Severity::Info,
                Kind::SchemaRemoved,
                &at,
                "removed; no operation used it".to_owned(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_whatever_their_parameters_are_called() {
        assert_eq!(normalised("/offers/{id}/claim"), "/offers/{}/claim");
        assert_eq!(normalised("/offers/{offerId}/claim"), "/offers/{}/claim");
        assert_eq!(path_params("/a/{x}/b/{y}"), vec!["x", "y"]);
    }

    #[test]
    fn no_security_is_one_way_in() {
        let open = serde_json::json!({});
        let bat = serde_json::json!({"security": [{"SessionBat": []}]});
        assert_eq!(
            security_alternatives(&open),
            BTreeSet::from([BTreeSet::new()])
        );
        let mut w = Walker::new(&open, &bat);
        security(&mut w, "GET /x", &open, &bat);
        assert_eq!(w.changes[0].kind, Kind::SecurityChanged);
    }
}
