-- When each live wallet was last reconciled with the mint, so the reconciliation job walks all
-- of them in turn, least recently checked first.
create table wallet_checks (
    wallet_id   text primary key check (wallet_id ~ '^[a-z0-9_-]{1,80}$'),
    checked_at  timestamptz not null
);

-- The reconciliation's re-enqueue of overdue releases looks for old unreleased payouts.
create index payouts_unreleased on payouts (created_at) where state = 'RECORDED';
