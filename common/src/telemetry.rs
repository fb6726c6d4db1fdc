//! Logging set-up, correlation ids and the shutdown signal shared by both binaries.
//!
//! A correlation id names one piece of work across processes: the api takes it from a
//! request's `X-Request-Id` (or makes one), keeps it in a task-local while the request runs,
//! and [`crate::jobs::enqueue`] stores it in the metadata of every job the request enqueues;
//! the worker reads it back and runs the job inside the same task-local. Each side also opens
//! a span carrying it, so every log line of one trade, api and worker, shows the same id.

use std::future::Future;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Logs to stderr, filtered by `RUST_LOG` (default `info`), as text or one JSON object per
/// line. Secrets are never logged by this codebase: BATs, tokens, proofs and keys are kept out
/// of every log statement (api/tests/logs.rs checks both formats). Beside the log output, the
/// database timing layer ([`crate::metrics::db`]) turns sqlx's statement and pool-wait events
/// into metrics under a filter of its own, so `RUST_LOG` changes the logs only.
pub fn init(format: LogFormat) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let text = tracing_subscriber::fmt::layer().with_target(false);
    let output = match format {
        LogFormat::Text => text.with_filter(filter).boxed(),
        LogFormat::Json => text
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .with_filter(filter)
            .boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(output)
        .with(crate::metrics::db::layer())
        .try_init();
}

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The correlation id of the request or job this task is working for, if any.
pub fn request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Runs `fut` with `id` as its correlation id.
pub async fn with_request_id<F: Future>(id: String, fut: F) -> F::Output {
    REQUEST_ID.scope(id, fut).await
}

/// Whether `id` may be used as a correlation id: 1 to 64 characters of `A-Z a-z 0-9 - _ .`.
/// Anything else (too long, spaces, quotes, control characters) is replaced by a fresh id, so a
/// client cannot forge log lines or blow up their size.
pub fn valid_request_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A fresh correlation id (a ULID: sortable by time, 26 characters).
pub fn new_request_id() -> String {
    ulid::Ulid::generate().to_string()
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_plain_ids_are_taken() {
        assert!(valid_request_id("01HZX3-abc_def.1"));
        assert!(valid_request_id(&new_request_id()));
        assert!(!valid_request_id(""));
        assert!(!valid_request_id(&"a".repeat(65)));
        assert!(!valid_request_id("a b"));
        assert!(!valid_request_id("a\nb"));
        assert!(!valid_request_id("\"x\""));
    }

    #[tokio::test]
    async fn the_id_is_scoped_to_its_future() {
        assert_eq!(request_id(), None);
        let inside = with_request_id("r1".to_owned(), async { request_id() }).await;
        assert_eq!(inside.as_deref(), Some("r1"));
        assert_eq!(request_id(), None);
    }
}
