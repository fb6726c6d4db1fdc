//! New wallet files start as a copy of a blank one.
//!
//! Opening a wallet file that does not exist yet had SQLite create it and cdk run its forty-odd
//! schema migrations in it, with their DDL parsed and executed each time: most of what a first
//! `POST /offers/{id}/fund` or a first minted deposit cost. The schema is the same for
//! every wallet, so each manager makes one migrated blank file once, keeps its bytes (about a
//! hundred KiB), and writes a new wallet's file from them; cdk then finds every migration
//! applied.
//!
//! A blank holds no secret and names no wallet: the seed is derived from the master secret and
//! the wallet id at open, and the mint's keysets are fetched into the file on first use, as
//! before. If the blank cannot be made, wallets are created the old way.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::OnceCell;

use super::error::WalletError;
use super::store::{SqlxSqliteConfig, WalletSqlxDatabase};

/// The blank file's bytes, made on first use.
#[derive(Debug, Default)]
pub(super) struct Blank {
    bytes: OnceCell<Arc<Vec<u8>>>,
}

impl Blank {
    /// Writes a new wallet file at `path` (which must not exist) from the blank; false when
    /// no blank could be made (the caller lets SQLite and cdk create the file).
    pub(super) async fn create_at(&self, path: &Path) -> Result<bool, WalletError> {
        let bytes = match self.bytes.get_or_try_init(make).await {
            Ok(bytes) => bytes.clone(),
            Err(e) => {
                tracing::warn!(error = %e, "no blank wallet file; creating wallets from scratch");
                return Ok(false);
            }
        };
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || write_new(&path, &bytes))
            .await
            .map_err(|e| WalletError::Task(e.to_string()))??;
        Ok(true)
    }
}

/// Writes `bytes` to a temporary name beside `path`, syncs it and renames it into place, so a
/// crash leaves either no wallet file or a whole blank one, never a torn one.
fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("creating");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)
}

/// Makes a migrated, empty wallet file and reads it back.
async fn make() -> Result<Arc<Vec<u8>>, WalletError> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("blank.sqlite");
    let config = SqlxSqliteConfig::file(&path);
    let connections = config.open_connections();
    let db = WalletSqlxDatabase::new(config).await?;
    drop(db);
    // The last connection's close checkpoints the WAL into the file and removes it.
    if !connections.wait_closed(Duration::from_secs(10)).await {
        return Err(WalletError::Task("blank wallet did not close".to_owned()));
    }
    let wal = path.with_extension("sqlite-wal");
    if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
        return Err(WalletError::Task(
            "blank wallet's WAL was not checkpointed".to_owned(),
        ));
    }
    Ok(Arc::new(tokio::fs::read(&path).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wallet_made_from_the_blank_comes_migrated_and_opens() {
        use sqlx::Connection;
        let blank = Blank::default();
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("w.sqlite");
        assert!(
            blank.create_at(&path).await.expect("create"),
            "a blank was made"
        );
        assert!(
            !path.with_extension("creating").exists(),
            "renamed into place"
        );

        // Migrated before cdk ever opened it.
        let url = format!("sqlite://{}", path.display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("sqlite");
        let applied: i64 = sqlx::query_scalar("select count(*) from migrations")
            .fetch_one(&mut conn)
            .await
            .expect("migrations table");
        conn.close().await.expect("close");
        assert!(applied >= 30, "{applied} migrations applied in the blank");

        let config = SqlxSqliteConfig::file(&path);
        let connections = config.open_connections();
        let db = WalletSqlxDatabase::new(config).await.expect("cdk opens it");
        drop(db);
        assert!(connections.wait_closed(Duration::from_secs(10)).await);

        // A second wallet from the same blank, which is made only once.
        let second = dir.path().join("w2.sqlite");
        assert!(blank.create_at(&second).await.expect("create"));
        assert_eq!(
            std::fs::metadata(&second).expect("file").len(),
            blank.bytes.get().expect("made").len() as u64
        );
    }
}
