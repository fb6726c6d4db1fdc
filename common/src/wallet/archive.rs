//! Wallet archives: a copy of a session's wallet file, kept for a while after the cleanup
//! deleted the wallet (`docs/operations.md`, "Wallet archives"; `WALLETS_ARCHIVE_DIR`, `WALLET_ARCHIVE_DAYS`).
//!
//! The copy is SQLite's `VACUUM INTO`, taken through a second connection while the wallet's
//! own connection is open under its lock and lease ([`super::WalletManager::delete_archiving`]):
//! it is one read transaction, so it is consistent (WAL contents included) however the file
//! was last written. It goes to a temporary name, is synced, renamed over `<wallet id>.db` and
//! the directory synced, so a reader never sees half a copy and a crash leaves at most a
//! `.partial` file that the next attempt (or the retention job) removes. Archiving the same
//! wallet twice (a cleanup repeated after a crash between the copy and the delete) replaces the
//! earlier copy with an equal or newer one.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

use super::error::WalletError;
use super::layout::WalletId;

/// Suffix of a copy still being written.
const PARTIAL: &str = ".partial";

/// Where the archive of `id` goes in `dir`.
pub fn archive_path(dir: &Path, id: &WalletId) -> PathBuf {
    dir.join(format!("{id}.db"))
}

/// Copies the wallet file `src` to `<dir>/<id>.db`, atomically and durably. The caller holds
/// the wallet's lock and lease, so nothing writes the file meanwhile.
pub async fn copy_into(src: &Path, dir: &Path, id: &WalletId) -> Result<PathBuf, WalletError> {
    tokio::fs::create_dir_all(dir).await?;
    let target = archive_path(dir, id);
    let partial = dir.join(format!("{id}.db{PARTIAL}"));
    // Left by a copy cut short: VACUUM INTO refuses to write over an existing file.
    match tokio::fs::remove_file(&partial).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    let mut conn = SqliteConnectOptions::new()
        .filename(src)
        .create_if_missing(false)
        .connect()
        .await
        .map_err(|e| WalletError::Task(format!("archive: open {}: {e}", src.display())))?;
    let out = partial.to_string_lossy().into_owned();
    let copied = sqlx::query("VACUUM INTO ?1")
        .bind(out)
        .execute(&mut conn)
        .await;
    conn.close().await.ok();
    copied.map_err(|e| WalletError::Task(format!("archive: copy {}: {e}", src.display())))?;
    let file = tokio::fs::File::open(&partial).await?;
    file.sync_all().await?;
    drop(file);
    tokio::fs::rename(&partial, &target).await?;
    // The rename is durable only once the directory entry is.
    tokio::fs::File::open(dir).await?.sync_all().await?;
    Ok(target)
}

/// Deletes archives (and copies left half-written) in `dir` last modified more than
/// `older_than` ago; returns how many. A missing directory holds nothing to prune.
pub fn prune(dir: &Path, older_than: Duration) -> std::io::Result<u64> {
    let Some(cutoff) = SystemTime::now().checked_sub(older_than) else {
        return Ok(0);
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        // Only what this module writes: the directory may be shared with other files.
        let ours = name.ends_with(".db") || name.ends_with(&format!(".db{PARTIAL}"));
        let meta = entry.metadata()?;
        if !ours || !meta.is_file() || meta.modified()? >= cutoff {
            continue;
        }
        match std::fs::remove_file(entry.path()) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_takes_only_old_archives() {
        let dir = tempfile::tempdir().expect("dir");
        let old = dir.path().join("session_a.db");
        let new = dir.path().join("session_b.db");
        let other = dir.path().join("notes.txt");
        for p in [&old, &new, &other] {
            std::fs::write(p, b"x").expect("write");
        }
        let long_ago = SystemTime::now() - Duration::from_secs(10 * 86_400);
        for p in [&old, &other] {
            std::fs::File::options()
                .write(true)
                .open(p)
                .and_then(|f| f.set_modified(long_ago))
                .expect("age");
        }
        assert_eq!(
            prune(dir.path(), Duration::from_secs(7 * 86_400)).expect("prune"),
            1
        );
        assert!(!old.exists() && new.exists() && other.exists());
        assert_eq!(
            prune(&dir.path().join("missing"), Duration::ZERO).expect("prune"),
            0
        );
    }

    /// The copy holds what the open WAL file holds (not yet checkpointed), replaces an earlier
    /// copy, and is not stopped by a half-written one.
    #[tokio::test]
    async fn copies_are_whole_and_repeatable() {
        let dir = tempfile::tempdir().expect("dir");
        let src = dir.path().join("live.db");
        let archive = dir.path().join("archive");
        let id = WalletId::parse("session_x").expect("id");
        let mut live = SqliteConnectOptions::new()
            .filename(&src)
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .connect()
            .await
            .expect("open");
        sqlx::query("create table t (n integer)")
            .execute(&mut live)
            .await
            .expect("create");
        let count = |path: PathBuf| async move {
            let mut c = SqliteConnectOptions::new()
                .filename(path)
                .connect()
                .await
                .expect("open copy");
            let n: i64 = sqlx::query_scalar("select count(*) from t")
                .fetch_one(&mut c)
                .await
                .expect("count");
            n
        };
        for round in 1..=2i64 {
            sqlx::query("insert into t values (1)")
                .execute(&mut live)
                .await
                .expect("insert");
            std::fs::create_dir_all(&archive).expect("dir");
            std::fs::write(archive.join("session_x.db.partial"), b"cut short").expect("partial");
            let copy = copy_into(&src, &archive, &id).await.expect("copy");
            assert_eq!(copy, archive_path(&archive, &id));
            assert_eq!(count(copy).await, round);
            assert!(!archive.join("session_x.db.partial").exists());
        }
    }
}
