-- Deposit and bond quotes made without opening the session wallet (issue 14: no request waits
-- for a lease another process holds). The api asks the mint for the quote directly, locked
-- (NUT-20) to a key derived from the session wallet's seed and this nonce; only the worker that
-- mints opens the wallet, deriving the same key to sign the mint request. The nonce is no
-- secret on its own: the key needs the master secret too, which PostgreSQL never holds.
-- Null: a quote the wallet made itself (before this migration, and the wallet's own quotes).
alter table wallet_quotes add column lock_nonce text check (lock_nonce ~ '^[0-9a-f]{32}$');
