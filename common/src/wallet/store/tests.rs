//! Tests of the SQLite adapter: statements, transactions, connection counting.
use cdk_sql_common::pool::Pool;
use cdk_sql_common::stmt::query;

use super::*;

#[tokio::test]
async fn values_round_trip_by_storage_class() {
    let pool = Pool::<SqlxSqlitePool>::new(SqlxSqliteConfig::memory());
    let conn = pool.get().await.expect("connection");
    query("CREATE TABLE t (a, b, c, d, e)")
        .expect("sql")
        .execute(&*conn)
        .await
        .expect("create");
    let n = query("INSERT INTO t VALUES (:a, :b, :c, :d, :e)")
        .expect("sql")
        .bind("a", 7i64)
        .bind("b", "text")
        .bind("c", vec![1u8, 2, 3])
        .bind("d", Value::Null)
        .bind("e", Value::Real(1.5))
        .execute(&*conn)
        .await
        .expect("insert");
    assert_eq!(n, 1);
    let row = query("SELECT a, b, c, d, e FROM t")
        .expect("sql")
        .fetch_one(&*conn)
        .await
        .expect("select")
        .expect("row");
    assert_eq!(
        row,
        vec![
            Value::Integer(7),
            Value::Text("text".to_owned()),
            Value::Blob(vec![1, 2, 3]),
            Value::Null,
            Value::Real(1.5)
        ]
    );
}

#[tokio::test]
async fn unique_violation_is_duplicate() {
    let pool = Pool::<SqlxSqlitePool>::new(SqlxSqliteConfig::memory());
    let conn = pool.get().await.expect("connection");
    conn.batch(query("CREATE TABLE u (y TEXT PRIMARY KEY)").expect("sql"))
        .await
        .expect("create");
    let insert = || {
        query("INSERT INTO u (y) VALUES (:y)")
            .expect("sql")
            .bind("y", "same")
    };
    insert().execute(&*conn).await.expect("first insert");
    let second = insert().execute(&*conn).await;
    assert!(matches!(second, Err(Error::Duplicate)), "{second:?}");
}

#[tokio::test]
async fn rollback_without_transaction_is_ok_and_memory_db_survives() {
    let pool = Pool::<SqlxSqlitePool>::new(SqlxSqliteConfig::memory());
    let mut conn = pool.get().await.expect("connection");
    conn.batch(query("CREATE TABLE k (v INTEGER)").expect("sql"))
        .await
        .expect("create");
    SqlxSqliteTransaction::rollback(&mut conn)
        .await
        .expect("rollback without a transaction");
    SqlxSqliteTransaction::begin(&mut conn)
        .await
        .expect("begin");
    query("INSERT INTO k VALUES (1)")
        .expect("sql")
        .execute(&*conn)
        .await
        .expect("insert");
    SqlxSqliteTransaction::rollback(&mut conn)
        .await
        .expect("rollback");
    let count = query("SELECT COUNT(*) FROM k")
        .expect("sql")
        .pluck(&*conn)
        .await
        .expect("count");
    assert_eq!(count, Some(Value::Integer(0)));
}

#[tokio::test]
async fn file_connections_are_counted_and_closed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = SqlxSqliteConfig::file(dir.path().join("w.db"));
    let open = config.open_connections();
    let db = WalletSqlxDatabase::new(config)
        .await
        .expect("open wallet db");
    assert_eq!(open.count(), 1);
    drop(db);
    assert!(open.wait_closed(Duration::from_secs(5)).await);
    assert!(!dir.path().join("w.db-wal").exists());
}
