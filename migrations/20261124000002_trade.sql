-- The trade: funding quotes, receipts, payouts recorded before release, the sat ledger, and
-- the event log live updates are read from.

alter table offers
    add column deposit_quote_id  text unique,
    add column bond_quote_id     text,
    add column funded_by         text check (funded_by in ('lightning', 'token')),
    add column claimed_at        timestamptz,
    add column resolved_outcome  text check (resolved_outcome in
                                   ('COMPLETED', 'REFUND_MAKER', 'MAKER_WINS', 'TAKER_WINS', 'RETURN', 'SPLIT'));

-- Quotes belong to an offer's deposit or a claim's bond.
-- A late payment is refunded to `refund_pubkey`, the payer's key when the quote was made.
alter table wallet_quotes
    add column offer_id       uuid references offers (id),
    add column purpose        text check (purpose in ('deposit', 'bond')),
    add column refund_pubkey  text check (refund_pubkey ~ '^[0-9a-f]{64}$');
create index wallet_quotes_offer on wallet_quotes (offer_id) where offer_id is not null;

create table receipts (
    offer_id      uuid primary key references offers (id),
    content_type  text not null check (content_type in ('image/png', 'image/jpeg', 'image/webp')),
    image         bytea not null check (octet_length(image) between 1 and 10485760),
    note          text check (note is null or length(note) <= 1000),
    created_at    timestamptz not null default now()
);

-- Every payout is recorded (who, how much, from which wallet, locked to which key) before any
-- ecash moves; the release job fills in the send operation and then the token. One row per
-- (offer, party, purpose, source wallet), so recording twice is impossible.
create table payouts (
    id                 uuid primary key,
    offer_id           uuid not null references offers (id),
    party              text not null check (party in ('maker', 'taker', 'platform')),
    purpose            text not null check (purpose in ('settlement', 'refund', 'late_refund')),
    source_wallet      text not null check (source_wallet ~ '^[a-z0-9_-]{1,80}$'),
    amount_sats        bigint not null check (amount_sats > 0),
    lock_pubkey        text check (lock_pubkey ~ '^[0-9a-f]{64}$'),
    state              text not null default 'RECORDED'
                       check (state in ('RECORDED', 'RELEASED', 'SWEPT')),
    send_operation_id  text,
    token              text,
    fee_sats           bigint not null default 0 check (fee_sats >= 0),
    -- What the payout answers, e.g. the quote a late payment came through.
    ref                text not null default '',
    created_at         timestamptz not null default now(),
    released_at        timestamptz,
    unique (offer_id, party, purpose, source_wallet, ref),
    check ((state = 'RECORDED') = (token is null)),
    -- Only the platform's own share is unlocked (it is swept into the treasury at once).
    check ((party = 'platform') = (lock_pubkey is null))
);
create index payouts_pending on payouts (offer_id) where state = 'RECORDED';

-- Every sat that moved for an offer. `ref` makes each entry idempotent.
create table ledger_entries (
    id           bigserial primary key,
    offer_id     uuid not null references offers (id),
    kind         text not null check (kind in ('deposit', 'bond', 'payout', 'platform_fee', 'mint_fee')),
    direction    text not null check (direction in ('in', 'out')),
    amount_sats  bigint not null check (amount_sats >= 0),
    ref          text not null,
    created_at   timestamptz not null default now(),
    unique (offer_id, kind, ref)
);

-- What changed, for live updates: public rows carry no party data.
create table offer_events (
    id          bigserial primary key,
    offer_id    uuid not null references offers (id),
    status      text not null,
    created_at  timestamptz not null default now()
);
create index offer_events_offer on offer_events (offer_id, id);
