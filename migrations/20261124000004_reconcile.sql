-- When each live wallet was last reconciled with the mint, so the reconciliation job walks all
-- of them in turn, least recently checked first.
create table wallet_checks (
    wallet_id   text primary key check (wallet_id ~ '^[a-z0-9_-]{1,80}$'),
    checked_at  timestamptz not null
);

-- Overdue payouts (alerts, and the reconciliation's re-enqueue): old unreleased ones, and the
-- platform's shares released but not yet swept into the treasury.
create index payouts_unreleased on payouts (created_at) where state = 'RECORDED';
create index payouts_unswept on payouts (released_at) where state = 'RELEASED' and party = 'platform';

-- A session's wallet id exactly as `WalletId::session` writes it, for queries that join wallets
-- (payouts' source wallets, wallet checks) to sessions.
create function session_wallet_id(session uuid) returns text
    language sql immutable parallel safe
    as $$ select 'session_' || replace(session::text, '-', '') $$;
