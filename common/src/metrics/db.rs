//! Database timing: every statement's execution time and every wait for a pooled connection,
//! as histograms, for every query the process makes (repositories, transactions and apalis'
//! own queue queries alike).
//!
//! sqlx already times both at the one place they happen (its statement logger and
//! `Pool::acquire`) and reports them as `tracing` events on the targets `sqlx::query`
//! (`elapsed_secs`) and `sqlx::pool::acquire` (`acquired_after_secs`). [`layer`] turns those
//! events into metrics. It carries its own filter, so it sees them whatever `RUST_LOG` says,
//! and the log output does not change: the fmt layer keeps its own `RUST_LOG` filter. A
//! wrapper around every repository call or around the pool would time the same two things
//! with more code and would miss the queries apalis makes on its own.

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{Filtered, Targets};
use tracing_subscriber::layer::{Context, Layer};

use super::names;

/// The `tracing` target of sqlx's statement events.
const QUERY_TARGET: &str = "sqlx::query";
/// The `tracing` target of sqlx's connection-acquire events.
const ACQUIRE_TARGET: &str = "sqlx::pool::acquire";

/// Records sqlx's timing events as metrics; see the module documentation.
#[derive(Debug, Clone, Copy, Default)]
pub struct DbMetrics;

/// The layer with its filter: sqlx's two timing targets at every level, nothing else.
pub fn layer<S>() -> Filtered<DbMetrics, Targets, S>
where
    S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    DbMetrics.with_filter(
        Targets::new()
            .with_target(QUERY_TARGET, Level::TRACE)
            .with_target(ACQUIRE_TARGET, Level::TRACE),
    )
}

/// The fields this layer reads from one event.
#[derive(Default)]
struct Timing {
    secs: Option<f64>,
    op: &'static str,
}

impl Visit for Timing {
    fn record_f64(&mut self, field: &Field, value: f64) {
        if matches!(field.name(), "elapsed_secs" | "acquired_after_secs") {
            self.secs = Some(value);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "summary" {
            self.op = statement_kind(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "summary" {
            self.op = statement_kind(&format!("{value:?}").replace('"', ""));
        }
    }
}

/// A statement's kind from its first word: a bounded label, never the SQL itself.
fn statement_kind(sql: &str) -> &'static str {
    let first = sql
        .trim_start()
        .split(|c: char| c.is_whitespace() || c == '(')
        .next()
        .unwrap_or_default();
    match first.to_ascii_lowercase().as_str() {
        "select" | "with" => "select",
        "insert" => "insert",
        "update" => "update",
        "delete" => "delete",
        _ => "other",
    }
}

impl<S: Subscriber> Layer<S> for DbMetrics {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let target = event.metadata().target();
        let mut timing = Timing {
            secs: None,
            op: "other",
        };
        event.record(&mut timing);
        let Some(secs) = timing.secs else { return };
        if target == QUERY_TARGET {
            metrics::histogram!(names::DB_QUERY_DURATION, "op" => timing.op).record(secs);
        } else if target == ACQUIRE_TARGET {
            metrics::histogram!(names::DB_POOL_WAIT).record(secs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_labelled_by_kind() {
        assert_eq!(statement_kind("SELECT id FROM offers …"), "select");
        assert_eq!(statement_kind("  with x as (select 1) select"), "select");
        assert_eq!(statement_kind("insert into payouts"), "insert");
        assert_eq!(statement_kind("UPDATE offers SET"), "update");
        assert_eq!(statement_kind("delete from t"), "delete");
        assert_eq!(statement_kind("BEGIN"), "other");
        assert_eq!(statement_kind(""), "other");
    }
}
