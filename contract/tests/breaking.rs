//! The breaking-change check on the real documents: today's tree passes against its released
//! copies and against itself, and each kind of break the check exists for (a removed
//! operation, a new required request field, a narrowed enum, a changed success status, a
//! renamed schema) is caught on both documents, fails the versioning rule at the same version,
//! and passes it with a minor bump and a CHANGELOG entry.

use std::path::PathBuf;

use openpleb_contract::{diff, judge, parse, Change, Kind, Severity};
use serde_json::{json, Value};

const DOCUMENTS: [&str; 2] = ["openapi.yaml", "openapi-admin.yaml"];

fn repo_file(path: &str) -> String {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path);
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

fn document(path: &str) -> Value {
    parse(&repo_file(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn changelog() -> String {
    repo_file("CHANGELOG.md")
}

#[test]
fn today_s_documents_keep_the_rule_against_the_released_ones() {
    for doc in DOCUMENTS {
        let verdict = judge(
            &document(&format!("api/released/{doc}")),
            &document(doc),
            &changelog(),
        )
        .expect("versions");
        assert!(
            verdict.problems.is_empty(),
            "{doc}: {:#?}\n{:#?}",
            verdict.problems,
            verdict.changes
        );
    }
}

#[test]
fn today_s_documents_against_themselves_change_nothing() {
    for doc in DOCUMENTS {
        let current = document(doc);
        assert_eq!(diff(&current, &current), Vec::<Change>::new(), "{doc}");
    }
}

/// `/paths/~1offers/post`: a JSON pointer to an operation.
fn op_pointer(path: &str, method: &str) -> String {
    format!(
        "/paths/{}/{method}",
        path.replace('~', "~0").replace('/', "~1")
    )
}

/// Every operation, as (path, method).
fn operations(doc: &Value) -> Vec<(String, String)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            ops.push((path.clone(), method.clone()));
        }
    }
    ops
}

/// The component name of the first JSON request body that is an object schema.
fn first_request_schema(doc: &Value) -> (String, String) {
    for (path, method) in operations(doc) {
        let op = &doc.pointer(&op_pointer(&path, &method)).expect("op");
        let Some(content) = op
            .pointer("/requestBody/content")
            .and_then(Value::as_object)
        else {
            continue;
        };
        for media in content.values() {
            let name = media.pointer("/schema/$ref").and_then(Value::as_str);
            if let Some(name) = name.and_then(|r| r.strip_prefix("#/components/schemas/")) {
                if doc["components"]["schemas"][name]["type"] == "object" {
                    return (name.to_owned(), format!("{} {path}", method.to_uppercase()));
                }
            }
        }
    }
    panic!("no request body with an object schema");
}

/// A JSON pointer to the first enum (of two values or more) `schema` reaches.
fn find_enum(doc: &Value, schema: &Value, at: String, depth: usize) -> Option<String> {
    if depth > 6 {
        return None;
    }
    if let Some(name) = schema.pointer("/$ref").and_then(Value::as_str) {
        let name = name.strip_prefix("#/components/schemas/")?;
        let at = format!("/components/schemas/{name}");
        return find_enum(doc, doc.pointer(&at)?, at, depth + 1);
    }
    if schema["enum"].as_array().is_some_and(|e| e.len() > 1) {
        return Some(format!("{at}/enum"));
    }
    for (name, prop) in schema["properties"].as_object().into_iter().flatten() {
        if let Some(found) = find_enum(doc, prop, format!("{at}/properties/{name}"), depth + 1) {
            return Some(found);
        }
    }
    find_enum(doc, &schema["items"], format!("{at}/items"), depth + 1)
}

/// The schemas under a body's media types, with their pointers.
fn bodies(body: &Value, at: &str) -> Vec<(String, Value)> {
    body["content"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(media, m)| {
            let media = media.replace('~', "~0").replace('/', "~1");
            (format!("{at}/content/{media}/schema"), m["schema"].clone())
        })
        .collect()
}

/// A JSON pointer to an enum that requests send: reached from a parameter or a request body.
fn request_enum(doc: &Value) -> String {
    for (path, method) in operations(doc) {
        let at = op_pointer(&path, &method);
        let op = doc.pointer(&at).expect("op");
        let mut schemas: Vec<(String, Value)> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
            .map(|(i, p)| (format!("{at}/parameters/{i}/schema"), p["schema"].clone()))
            .collect();
        schemas.extend(bodies(&op["requestBody"], &format!("{at}/requestBody")));
        for (here, schema) in schemas {
            if let Some(found) = find_enum(doc, &schema, here, 0) {
                return found;
            }
        }
    }
    panic!("no enum in any request");
}

/// A JSON pointer to a string property of a schema some success response answers with.
fn response_string(doc: &Value) -> String {
    fn find(doc: &Value, schema: &Value, at: String, depth: usize) -> Option<String> {
        if depth > 6 {
            return None;
        }
        if let Some(name) = schema.pointer("/$ref").and_then(Value::as_str) {
            let name = name.strip_prefix("#/components/schemas/")?;
            let at = format!("/components/schemas/{name}");
            return find(doc, doc.pointer(&at)?, at, depth + 1);
        }
        for (name, prop) in schema["properties"].as_object().into_iter().flatten() {
            if prop["type"] == "string" && prop.get("format").is_none() {
                return Some(format!("{at}/properties/{name}"));
            }
        }
        find(doc, &schema["items"], format!("{at}/items"), depth + 1)
    }
    for (path, method) in operations(doc) {
        let at = op_pointer(&path, &method);
        let op = doc.pointer(&at).expect("op");
        for (code, response) in op["responses"].as_object().into_iter().flatten() {
            if !code.starts_with('2') {
                continue;
            }
            for (here, schema) in bodies(response, &format!("{at}/responses/{code}")) {
                if let Some(found) = find(doc, &schema, here, 0) {
                    return found;
                }
            }
        }
    }
    panic!("no string property in any response");
}

/// Renames a component schema and every reference to it.
fn rename_schema(doc: &mut Value, from: &str, to: &str) {
    let schemas = doc["components"]["schemas"]
        .as_object_mut()
        .expect("schemas");
    let schema = schemas.remove(from).expect("the schema");
    schemas.insert(to.to_owned(), schema);
    fn rewrite(v: &mut Value, from: &str, to: &str) {
        match v {
            Value::Object(m) => {
                if m.get("$ref").and_then(Value::as_str) == Some(from) {
                    m.insert("$ref".to_owned(), Value::String(to.to_owned()));
                }
                m.values_mut().for_each(|x| rewrite(x, from, to));
            }
            Value::Array(a) => a.iter_mut().for_each(|x| rewrite(x, from, to)),
            _ => {}
        }
    }
    rewrite(
        doc,
        &format!("#/components/schemas/{from}"),
        &format!("#/components/schemas/{to}"),
    );
}

/// The next minor version after `doc`'s (what a breaking change needs while the contract is
/// 0.x; the major one from 1.0.0 on).
fn next_breaking(doc: &Value) -> String {
    let version = doc["info"]["version"].as_str().expect("version");
    let parts: Vec<u64> = version
        .split('.')
        .map(|p| p.parse().expect("number"))
        .collect();
    match parts.as_slice() {
        [0, minor, _] => format!("0.{}.0", minor + 1),
        [major, _, _] => format!("{}.0.0", major + 1),
        _ => panic!("not a semantic version: {version}"),
    }
}

/// The current document changed by `mutate`: the check must report `kind` as breaking, refuse
/// it at the same version, and accept it at the next breaking version with a CHANGELOG entry
/// (but not without).
fn assert_caught(doc_name: &str, kind: Kind, mutate: impl Fn(&mut Value)) {
    let released = document(doc_name);
    let mut current = released.clone();
    mutate(&mut current);
    let changes = diff(&released, &current);
    assert!(
        changes
            .iter()
            .any(|c| c.kind == kind && c.severity == Severity::Breaking),
        "{doc_name}: {kind:?} not caught; found {changes:#?}"
    );
    let verdict = judge(&released, &current, &changelog()).expect("versions");
    assert!(
        verdict.problems.iter().any(|p| p.contains("breaking")),
        "{doc_name}: {kind:?} passed at the same version"
    );
    let next = next_breaking(&released);
    current["info"]["version"] = json!(next);
    let without_entry = judge(&released, &current, "## [0.1.0]\n").expect("versions");
    assert!(
        without_entry
            .problems
            .iter()
            .any(|p| p.contains("CHANGELOG")),
        "{doc_name}: a new version without a CHANGELOG entry passed"
    );
    let entry = format!("## [{next}] - 2026-12-07\n");
    let announced = judge(&released, &current, &entry).expect("versions");
    assert!(
        announced.problems.is_empty(),
        "{doc_name}: {:?}",
        announced.problems
    );
}

#[test]
fn a_removed_operation_is_caught() {
    for doc in DOCUMENTS {
        assert_caught(doc, Kind::OperationRemoved, |d| {
            let (path, method) = operations(d).pop().expect("an operation");
            d["paths"][&path]
                .as_object_mut()
                .expect("path item")
                .remove(&method);
        });
    }
}

#[test]
fn a_new_required_request_field_is_caught() {
    for doc in DOCUMENTS {
        let (name, _) = first_request_schema(&document(doc));
        assert_caught(doc, Kind::RequiredPropertyAdded, |d| {
            let schema = &mut d["components"]["schemas"][&name];
            schema["properties"]["newField"] = json!({"type": "string"});
            match schema["required"].as_array_mut() {
                Some(required) => required.push(json!("newField")),
                None => schema["required"] = json!(["newField"]),
            }
        });
    }
}

#[test]
fn a_narrowed_request_enum_is_caught() {
    for doc in DOCUMENTS {
        let at = request_enum(&document(doc));
        assert_caught(doc, Kind::EnumNarrowed, |d| {
            d.pointer_mut(&at)
                .and_then(Value::as_array_mut)
                .expect("the enum")
                .pop();
        });
    }
}

#[test]
fn a_changed_success_status_is_caught() {
    for doc in DOCUMENTS {
        let current = document(doc);
        let (path, method) = operations(&current)
            .into_iter()
            .find(|(p, m)| current["paths"][p][m]["responses"]["200"].is_object())
            .expect("an operation answering 200");
        assert_caught(doc, Kind::SuccessStatusRemoved, |d| {
            let responses = d["paths"][&path][&method]["responses"]
                .as_object_mut()
                .expect("responses");
            let ok = responses.remove("200").expect("200");
            responses.insert("202".to_owned(), ok);
        });
    }
}

#[test]
fn a_renamed_schema_is_caught() {
    for doc in DOCUMENTS {
        let (name, _) = first_request_schema(&document(doc));
        assert_caught(doc, Kind::SchemaRemoved, |d| {
            rename_schema(d, &name, &format!("{name}Renamed"));
        });
        assert_caught(doc, Kind::SchemaReplaced, |d| {
            rename_schema(d, &name, &format!("{name}Renamed"));
        });
    }
}

#[test]
fn a_removed_response_field_and_response_enum_changes_are_caught() {
    for doc in DOCUMENTS {
        // Neither document answers with an enum today (statuses are documented strings), so
        // one string property answered on success becomes one in the released copy.
        let mut released = document(doc);
        let property = response_string(&released);
        let at = format!("{property}/enum");
        released.pointer_mut(&property).expect("the property")["enum"] = json!(["A", "B", "C"]);
        let mut added = released.clone();
        added
            .pointer_mut(&at)
            .and_then(Value::as_array_mut)
            .expect("the enum")
            .push(json!("NEW_VALUE"));
        let mut removed = released.clone();
        removed
            .pointer_mut(&at)
            .and_then(Value::as_array_mut)
            .expect("the enum")
            .pop();
        let breaking = |current: &Value| -> Vec<Kind> {
            diff(&released, current)
                .into_iter()
                .filter(|c| c.severity == Severity::Breaking)
                .map(|c| c.kind)
                .collect()
        };
        assert!(breaking(&added).contains(&Kind::EnumValueAdded), "{doc}");
        assert!(
            breaking(&removed).contains(&Kind::EnumValueRemoved),
            "{doc}"
        );
    }
    let released = document("openapi.yaml");
    let mut current = released.clone();
    current["components"]["schemas"]["OfferView"]["properties"]
        .as_object_mut()
        .expect("properties")
        .remove("status");
    assert!(diff(&released, &current)
        .iter()
        .any(|c| c.kind == Kind::ResponsePropertyRemoved && c.severity == Severity::Breaking));
}

#[test]
fn additions_are_not_breaking() {
    let released = document("openapi.yaml");
    let mut current = released.clone();
    current["paths"]["/new"] = json!({"get": {"responses": {"200": {"description": "ok"}}}});
    let (name, _) = first_request_schema(&released);
    current["components"]["schemas"][&name]["properties"]["optionalField"] =
        json!({"type": "string"});
    let changes = diff(&released, &current);
    assert!(
        changes.iter().all(|c| c.severity == Severity::Info),
        "{changes:#?}"
    );
    assert_eq!(changes.len(), 2, "{changes:#?}");
}
