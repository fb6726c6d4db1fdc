//! cdk-common's own storage conformance suites run against the sqlx SQLite adapter.
//!
//! `wallet_db_test!` (51 tests) and `mint_db_test!` (80 tests) are the suites cdk runs against
//! cdk-sqlite and cdk-postgres; passing them is what lets the session wallets and the embedded
//! mint use cdk-sql-common without rusqlite.

use openpleb_common::wallet::store::{
    MintSqlxAuthDatabase, MintSqlxDatabase, SqlxSqliteConfig, WalletSqlxDatabase,
};

/// Wallet suite on real files (the production shape: one file, one connection).
mod wallet {
    use cdk_common::wallet_db_test;

    use super::*;

    async fn provide_db(test_name: String) -> WalletSqlxDatabase {
        let dir = std::env::temp_dir().join("openpleb-conformance");
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join(format!("{test_name}.db"));
        let _ = std::fs::remove_file(&path);
        WalletSqlxDatabase::new(SqlxSqliteConfig::file(path))
            .await
            .expect("wallet db")
    }

    wallet_db_test!(provide_db);
}

/// Mint suite in memory, as cdk-sqlite runs it.
mod mint {
    use cdk_common::mint_db_test;

    use super::*;

    async fn provide_db(_test_name: String) -> MintSqlxDatabase {
        MintSqlxDatabase::new(SqlxSqliteConfig::memory())
            .await
            .expect("mint db")
    }

    mint_db_test!(provide_db);

    #[tokio::test]
    async fn kvstore_compare_and_swap() {
        cdk_common::database::mint::test::kvstore_compare_and_swap(
            provide_db("kvstore_compare_and_swap".to_owned()).await,
        )
        .await;
    }

    // cdk-common also has two row-lock ordering tests; they are for PostgreSQL only (their own
    // doc says so: SQLite has no row-level FOR UPDATE, and BEGIN IMMEDIATE serialises the two
    // transactions, which the tests' barrier turns into a wait forever). cdk-sqlite skips them too.
}

/// The auth database's replay check: the same BAT `Y` can be recorded once only.
mod auth {
    use std::str::FromStr;

    use cdk_common::database::{Error, MintAuthDatabase};
    use cdk_common::secret::Secret;
    use cdk_common::{AuthProof, Id, SecretKey};

    use super::*;

    #[tokio::test]
    async fn spending_the_same_bat_twice_is_a_duplicate() {
        let db = MintSqlxAuthDatabase::new(SqlxSqliteConfig::memory())
            .await
            .expect("auth db");
        let proof = AuthProof {
            keyset_id: Id::from_str("00916bbf7ef91a36").expect("keyset id"),
            secret: Secret::generate(),
            c: SecretKey::generate().public_key(),
            dleq: None,
        };
        let mut tx = db.begin_transaction().await.expect("tx");
        tx.add_proof(proof.clone()).await.expect("first spend");
        tx.commit().await.expect("commit");
        let mut tx = db.begin_transaction().await.expect("tx");
        let second = tx.add_proof(proof).await;
        assert!(matches!(second, Err(Error::Duplicate)), "{second:?}");
    }
}
