-- OpenPleb platform schema. PostgreSQL holds platform data and the job queue, never ecash:
-- ecash lives in the per-session SQLite wallets. Constraints here make invalid states
-- unrepresentable, so a bug in the application fails loudly instead of writing nonsense.
-- The job queue's own tables live in schema `apalis` and are created by apalis-postgres.

-- Invite codes: single use, with an expiry. A code is "used" once a registration consumed it.
create table invite_codes (
    id          uuid primary key,
    code        text not null unique check (code ~ '^[A-Za-z0-9_-]{8,64}$'),
    created_at  timestamptz not null default now(),
    expires_at  timestamptz not null,
    used_at     timestamptz,
    revoked_at  timestamptz,
    check (expires_at > created_at),
    check (used_at is null or revoked_at is null)
);

-- Registered traders: a BIP-340 x-only pubkey (lowercase hex), nothing else about them.
create table users (
    id              uuid primary key,
    pubkey          text not null unique check (pubkey ~ '^[0-9a-f]{64}$'),
    status          text not null default 'active' check (status in ('active', 'inactive')),
    invite_code_id  uuid not null unique references invite_codes (id),
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now()
);

-- Registration nonces, kept so a signed registration cannot be replayed.
create table registration_nonces (
    nonce    text primary key check (length(nonce) between 16 and 128),
    seen_at  timestamptz not null default now()
);

-- Every blind auth token the platform ever accepted, by a hash of its Y. A BAT opens one
-- session or renews one, once, ever.
create table bat_redemptions (
    bat_hash     bytea primary key check (octet_length(bat_hash) = 32),
    redeemed_at  timestamptz not null default now()
);

-- Anonymous trading sessions. Deliberately no user id and no IP address: a session is known
-- only by the hash of the BAT that currently authenticates it.
create table sessions (
    id          uuid primary key,
    bat_hash    bytea not null unique references bat_redemptions (bat_hash),
    created_at  timestamptz not null default now(),
    expires_at  timestamptz not null,
    ended_at    timestamptz,
    check (expires_at > created_at)
);
create index sessions_expires_at on sessions (expires_at) where ended_at is null;

create table fiat_providers (
    id          uuid primary key,
    name        text not null unique check (length(name) between 1 and 100),
    kind        text not null check (kind in ('bank_transfer', 'payment_qr')),
    icon_url    text check (icon_url is null or length(icon_url) <= 2048),
    active      boolean not null default true,
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now()
);

-- Offers. Amounts are whole sats frozen at creation; timers run from state_entered_at.
create table offers (
    id                   uuid primary key,
    status               text not null check (status in (
                             'CREATED', 'INVOICE_PAID', 'INVOICE_CREATED', 'TAKER_BOND_PAID',
                             'RECEIPT_SUBMITTED', 'MARKED_WITH_ISSUE', 'DISPUTED',
                             'COMPLETED', 'EXPIRED', 'RESOLVED', 'CANCELLED')),
    maker_session_id     uuid not null references sessions (id),
    taker_session_id     uuid references sessions (id),
    fiat_amount_minor    bigint not null check (fiat_amount_minor > 0),
    fiat_currency        text not null check (fiat_currency ~ '^[A-Z]{3}$'),
    fiat_provider_id     uuid not null references fiat_providers (id),
    payment_details      text not null check (length(payment_details) between 1 and 4096),
    description          text check (description is null or length(description) <= 1000),
    price_minor_per_btc  bigint not null check (price_minor_per_btc > 0),
    amount_sats          bigint not null check (amount_sats > 0),
    platform_fee_sats    bigint not null check (platform_fee_sats >= 0),
    taker_reward_sats    bigint not null check (taker_reward_sats >= 0),
    maker_bond_sats      bigint not null check (maker_bond_sats >= 0),
    taker_bond_sats      bigint not null check (taker_bond_sats >= 0),
    maker_payout_pubkey  text not null check (maker_payout_pubkey ~ '^[0-9a-f]{64}$'),
    taker_payout_pubkey  text check (taker_payout_pubkey ~ '^[0-9a-f]{64}$'),
    lifetime_secs        bigint not null check (lifetime_secs > 0),
    state_entered_at     timestamptz not null default now(),
    expires_at           timestamptz,
    created_at           timestamptz not null default now(),
    updated_at           timestamptz not null default now(),
    -- A claimed offer always names its taker; an unclaimed one never does.
    check ((status in ('CREATED', 'INVOICE_PAID')) = (taker_session_id is null)
           or status in ('EXPIRED', 'CANCELLED')),
    check (taker_session_id is null or taker_session_id <> maker_session_id)
);
create index offers_book on offers (fiat_currency, created_at desc) where status = 'INVOICE_PAID';
create index offers_deadline on offers (expires_at)
    where status not in ('COMPLETED', 'EXPIRED', 'RESOLVED', 'CANCELLED');
create index offers_maker on offers (maker_session_id);
create index offers_taker on offers (taker_session_id) where taker_session_id is not null;

create table disputes (
    id             uuid primary key,
    offer_id       uuid not null unique references offers (id),
    status         text not null check (status in ('OPEN', 'COUNTERED', 'RESOLVED')),
    outcome        text check (outcome in ('MAKER_WINS', 'TAKER_WINS', 'RETURN', 'SPLIT')),
    maker_pubkey   text check (maker_pubkey ~ '^[0-9a-f]{64}$'),
    taker_pubkey   text check (taker_pubkey ~ '^[0-9a-f]{64}$'),
    opened_at      timestamptz not null default now(),
    resolved_at    timestamptz,
    check ((status = 'RESOLVED') = (outcome is not null)),
    check ((status = 'RESOLVED') = (resolved_at is not null))
);

create table settings (
    key         text primary key check (key ~ '^[a-z][a-z0-9_.]{0,63}$'),
    value       jsonb not null,
    updated_at  timestamptz not null default now()
);

-- Mint quotes the platform's wallets are waiting on. The watcher job moves them forward;
-- `minted_sats` is written in the same statement that marks the quote ISSUED.
create table wallet_quotes (
    quote_id     text primary key check (length(quote_id) between 1 and 200),
    wallet_id    text not null check (wallet_id ~ '^[a-z0-9_-]{1,80}$'),
    amount_sats  bigint not null check (amount_sats > 0),
    state        text not null default 'UNPAID' check (state in ('UNPAID', 'PAID', 'ISSUED', 'EXPIRED')),
    minted_sats  bigint check (minted_sats > 0),
    expires_at   timestamptz not null,
    created_at   timestamptz not null default now(),
    updated_at   timestamptz not null default now(),
    check ((state = 'ISSUED') = (minted_sats is not null))
);
create index wallet_quotes_open on wallet_quotes (updated_at) where state in ('UNPAID', 'PAID');

-- Which process has which wallet file open. SQLite locking is not safe across hosts, so a
-- wallet is opened only under a live lease; an expired lease may be taken over.
create table wallet_leases (
    wallet_id    text primary key,
    holder       text not null,
    lease_until  timestamptz not null
);

-- One row per periodic job slot: every worker ticks, the first insert wins and enqueues.
create table cron_slots (
    job          text not null,
    slot         timestamptz not null,
    enqueued_at  timestamptz not null default now(),
    primary key (job, slot)
);
