-- Reputation tokens. Nothing here names a session, a user or a key: outputs belong to an offer
-- and a role, spent tokens to nobody at all (their Y, keyset and time only), so issuing,
-- staking, returning and burning cannot be joined to who anyone is.

alter table offers
    add column maker_stake      integer not null default 0 check (maker_stake >= 0),
    add column taker_stake      integer not null default 0 check (taker_stake >= 0),
    add column min_taker_stake  integer not null default 0 check (min_taker_stake >= 0);
create index offers_book_stake on offers (maker_stake) where status = 'INVOICE_PAID';

-- Blinded outputs a party sent with its offer or claim: `earn` ones are signed when it earns,
-- `return` ones when its stake comes back. A burned stake's outputs are voided, never signed.
create table reputation_outputs (
    id              bigserial primary key,
    offer_id        uuid not null references offers (id),
    role            text not null check (role in ('maker', 'taker')),
    purpose         text not null check (purpose in ('earn', 'return')),
    state           text not null default 'pending' check (state in ('pending', 'signed', 'void')),
    keyset_id       text not null,
    blinded_secret  text not null unique check (blinded_secret ~ '^0[23][0-9a-f]{64}$'),
    signature       jsonb,
    created_at      timestamptz not null default now(),
    check ((state = 'signed') = (signature is not null))
);
create index reputation_outputs_offer on reputation_outputs (offer_id, role);

-- Staked tokens, by Y = hash_to_curve(secret): a token can be staked once, ever.
create table reputation_spent (
    y          text primary key check (y ~ '^0[23][0-9a-f]{64}$'),
    keyset_id  text not null,
    spent_at   timestamptz not null default now()
);
