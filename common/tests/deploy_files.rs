//! The shipped alert rules and dashboard name only metrics the code exports: a renamed metric
//! must not leave an alert silently watching nothing. The alert table of `docs/operations.md`
//! lists exactly the shipped rules, and `scripts/dev-smoke` checks only exported names.

use std::collections::BTreeSet;
use std::path::PathBuf;

use openpleb_common::metrics::names::{is_exported, ALL, HISTOGRAMS};

fn repo_file(path: &str) -> String {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path);
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

fn deploy(path: &str) -> String {
    repo_file(&format!("deploy/{path}"))
}

/// The alert names in the "Alerts and dashboard" table of `docs/operations.md`.
fn documented_alerts() -> BTreeSet<String> {
    let doc = repo_file("docs/operations.md");
    let section = doc
        .split("\n## Alerts and dashboard\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("docs/operations.md has an \"Alerts and dashboard\" section");
    section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`'))
        .map(|(name, _)| name.to_owned())
        .filter(|name| name.starts_with("OpenPleb"))
        .collect()
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
    // The source document's alerts (dispute rate, cleanup, BAT verification, database, API
    // errors), and those that watch what is owed: overdue payouts, dead jobs, reconciliation lag.
    for wanted in [
        "OpenPlebApiErrorRate",
        "OpenPlebWalletCleanupFailing",
        "OpenPlebBatVerificationUnavailable",
        "OpenPlebBatVerificationRejections",
        "OpenPlebDatabaseDown",
        "OpenPlebDisputeRateHigh",
        "OpenPlebPayoutsOverdue",
        "OpenPlebDeadJobs",
        "OpenPlebReconciliationLag",
    ] {
        assert!(alerts.iter().any(|a| a == wanted), "missing alert {wanted}");
    }
    let shipped: BTreeSet<String> = alerts.iter().cloned().collect();
    assert_eq!(shipped.len(), alerts.len(), "an alert name is used twice");
    assert_eq!(
        documented_alerts(),
        shipped,
        "the alert table of docs/operations.md and alerts.yml differ"
    );
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
fn the_smoke_run_checks_exported_metrics() {
    let script = repo_file("scripts/dev-smoke");
    // `openpleb_smoke_$$` is the run's database, not a metric.
    let mut names = metric_names(&script);
    names.remove("openpleb_smoke_");
    assert!(names.len() >= 20, "{names:?}");
    for name in &names {
        assert!(
            is_exported(name),
            "scripts/dev-smoke checks {name}, which the code does not export"
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
