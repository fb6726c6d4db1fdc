-- Fenced wallet leases (issue 15, item 7): every take of a lease draws a new generation from a
-- sequence. An open wallet remembers the generation it was opened under and refuses to write
-- once that generation is no longer the lease's (taken by another process, or lapsed), so a
-- process whose lease was taken stops before its next write. Leases existing at migration
-- time get a generation of their own.
create sequence wallet_lease_generation;
alter table wallet_leases
    add column generation bigint not null default nextval('wallet_lease_generation');

-- Funding tokens (issue 15, item 8). `POST /offers/{id}/fund` records an intent before the
-- token is received, so a cut at any point either funds the offer or leaves the token with the
-- maker (never taken) or refunds it: the handler settles its own intent, and the
-- reconciliation settles intents a crash left open, by what the session wallet recorded of the
-- token (cdk keeps each receive as a transaction keyed by the token's proofs). Only the
-- proofs' Ys are kept (public: what a mint's check-state takes), never the spendable token;
-- PostgreSQL never holds ecash.
create table fund_intents (
    id             uuid primary key,
    offer_id       uuid not null references offers (id),
    wallet_id      text not null check (wallet_id ~ '^[a-z0-9_-]{1,80}$'),
    token_ys       text[] not null check (cardinality(token_ys) > 0),
    -- SHA-256 of the sorted Ys: one live intent per token.
    ys_hash        text not null check (ys_hash ~ '^[0-9a-f]{64}$'),
    value_sats     bigint not null check (value_sats > 0),
    state          text not null default 'OPEN'
                   check (state in ('OPEN', 'FUNDED', 'REFUNDED', 'ABANDONED')),
    received_sats  bigint check (received_sats >= 0),
    created_at     timestamptz not null default now(),
    settled_at     timestamptz,
    check ((state = 'OPEN') = (settled_at is null)),
    check ((state in ('FUNDED', 'REFUNDED')) = (received_sats is not null))
);
create unique index fund_intents_one_live_per_token on fund_intents (ys_hash)
    where state <> 'ABANDONED';
create index fund_intents_open on fund_intents (created_at) where state = 'OPEN';
