//! The pool hands out connections in a known state: none inside a transaction left behind by
//! a cancelled `BEGIN`.

/// A connection returned to the pool inside a transaction sqlx does not know of (a `BEGIN`
/// whose future was dropped after the server took it) is closed, not handed to the next user,
/// whose own transaction would otherwise run inside the old one with its `now()`.
#[sqlx::test(migrations = false)]
async fn a_connection_left_in_a_transaction_is_not_reused(
    _opts: sqlx::postgres::PgPoolOptions,
    conn: sqlx::postgres::PgConnectOptions,
) {
    let pool = openpleb_common::db::pool_options(1)
        .connect_with(conn)
        .await
        .expect("pool");
    {
        let mut c = pool.acquire().await.expect("acquire");
        // What a cancelled `begin` leaves: the server in a transaction, sqlx unaware.
        sqlx::query("begin").execute(&mut *c).await.expect("begin");
        assert!(openpleb_common::db::still_in_transaction(&mut c)
            .await
            .expect("check"));
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut c = pool.acquire().await.expect("acquire again");
    assert!(
        !openpleb_common::db::still_in_transaction(&mut c)
            .await
            .expect("check"),
        "the next user was handed the old transaction"
    );
}
