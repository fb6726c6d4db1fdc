//! The shipped alert rules and dashboard name only metrics the code exports: a renamed metric
//! must not leave an alert silently watching nothing.

use std::collections::BTreeSet;
use std::path::PathBuf;

use openpleb_common::metrics::names::{is_exported, ALL, HISTOGRAMS};

fn deploy(path: &str) -> String {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(path);
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// Every `openpleb_…` identifier in a PromQL expression.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = expr;
    while let Some(at) = rest.find("openpleb_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        found.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    found
}

#[test]
fn alert_rules_use_exported_metrics() {
    let rules: serde_yaml::Value =
        serde_yaml::from_str(&deploy("prometheus/alerts.yml")).expect("alerts.yml is YAML");
    let mut used = BTreeSet::new();
    let mut alerts = Vec::new();
    for group in rules["groups"].as_sequence().expect("groups") {
        for rule in group["rules"].as_sequence().expect("rules") {
            let name = rule["alert"].as_str().expect("an alert name");
            let expr = rule["expr"].as_str().expect("an expression");
            assert!(rule["labels"]["severity"].is_string(), "{name}: severity");
            assert!(
                rule["annotations"]["summary"].is_string(),
                "{name}: summary"
            );
            let names = metric_names(expr);
            assert!(!names.is_empty(), "{name} names no metric");
            used.extend(names);
            alerts.push(name.to_owned());
        }
    }
    for wanted in [
        "OpenPlebApiErrorRate",
        "OpenPlebWalletCleanupFailing",
        "OpenPlebBatVerificationUnavailable",
        "OpenPlebDatabaseDown",
        "OpenPlebPayoutsOverdue",
        "OpenPlebDeadJobs",
        "OpenPlebReconciliationLag",
    ] {
        assert!(alerts.iter().any(|a| a == wanted), "missing alert {wanted}");
    }
    for name in &used {
        assert!(
            is_exported(name),
            "alerts.yml names {name}, which the code does not export"
        );
    }
}

#[test]
fn the_dashboard_uses_exported_metrics() {
    let dash: serde_json::Value =
        serde_json::from_str(&deploy("grafana/openpleb.json")).expect("openpleb.json is JSON");
    let mut used = BTreeSet::new();
    for panel in dash["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("expr");
            let names = metric_names(expr);
            assert!(!names.is_empty(), "a target names no metric: {expr}");
            used.extend(names);
        }
    }
    for name in &used {
        assert!(
            is_exported(name),
            "the dashboard names {name}, which the code does not export"
        );
    }
    // Histograms are charted through their buckets; every exported metric is on the board.
    for name in ALL {
        assert!(
            used.iter()
                .any(|u| u == name || (HISTOGRAMS.contains(name) && u.starts_with(name))),
            "the dashboard does not show {name}"
        );
    }
}

#[test]
fn names_are_found_in_expressions() {
    let names = metric_names(
        r#"sum(rate(openpleb_http_requests_total{status=~"5.."}[5m])) / openpleb_db_up"#,
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["openpleb_db_up", "openpleb_http_requests_total"]
    );
}
