-- The treasury is the operator's, and reachable (issue "The api holds no key that spends").
--
-- The treasury wallet's seed now derives from TREASURY_SECRET (wallet `platform_treasury_v2`)
-- instead of WALLET_MASTER_SECRET (wallet `platform_treasury`). The api opens no wallet: what it
-- shows of the treasury is what the workers write here after each sweep, withdrawal and
-- reconciliation. Nothing here is spendable: the only tokens stored are P2PK-locked (to the
-- treasury key, or to the key an admin gave for a withdrawal).

-- When a platform payout was swept into the treasury (the last one is "the last sweep").
alter table payouts add column swept_at timestamptz;
update payouts set swept_at = coalesce(released_at, created_at) where state = 'SWEPT';

-- One row. `balance_sats`: the treasury wallet's spendable balance as a worker last read it
-- (at `balance_at`). `legacy_*`: the one-time move of the legacy wallet's balance into the new
-- one: PENDING (not started), SENDING (its send's operation id recorded before anything left
-- the legacy wallet; then its token, locked to the treasury key), DONE (received, or there was
-- nothing to move). It runs once: DONE is never left.
create table treasury (
    id                  boolean primary key default true check (id),
    balance_sats        bigint not null default 0 check (balance_sats >= 0),
    balance_at          timestamptz,
    legacy_state        text not null default 'PENDING'
                        check (legacy_state in ('PENDING', 'SENDING', 'DONE')),
    legacy_operation_id text,
    legacy_token        text,
    legacy_sats         bigint not null default 0 check (legacy_sats >= 0),
    legacy_done_at      timestamptz,
    check ((legacy_state = 'DONE') = (legacy_done_at is not null)),
    check (legacy_state <> 'SENDING' or legacy_operation_id is not null)
);
insert into treasury default values;

-- Withdrawals out of the treasury wallet, asked for by an admin (`admin_actions` records who).
-- A token withdrawal stores its send's operation id before the send is confirmed and the token
-- (locked to the admin's key) before it is SENT; an invoice withdrawal stores its melt quote
-- before it melts, so a retry asks the mint about that quote and never pays a second one.
create table treasury_withdrawals (
    id               uuid primary key,
    kind             text not null check (kind in ('token', 'invoice')),
    state            text not null default 'REQUESTED'
                     check (state in ('REQUESTED', 'SENT', 'PAID', 'FAILED')),
    admin_name       text not null,
    -- token: what the admin asked for (the mint's fee comes out of it); invoice: its amount.
    amount_sats      bigint not null check (amount_sats > 0),
    lock_pubkey      text,
    invoice          text,
    operation_id     text,
    token            text,
    quote_id         text unique,
    fee_reserve_sats bigint,
    -- token: the mint's input fee; invoice: Lightning fee plus input fee, as paid.
    fee_sats         bigint not null default 0 check (fee_sats >= 0),
    preimage         text,
    failure          text,
    created_at       timestamptz not null default now(),
    finished_at      timestamptz,
    check ((kind = 'token') = (lock_pubkey is not null)),
    check ((kind = 'invoice') = (invoice is not null)),
    check ((state = 'REQUESTED') = (finished_at is null)),
    check (state <> 'SENT' or (kind = 'token' and token is not null)),
    check (state <> 'PAID' or kind = 'invoice'),
    check ((state = 'FAILED') = (failure is not null))
);
-- One withdrawal at a time: a second REQUESTED row is a unique violation (the api's 409).
create unique index treasury_withdrawals_one_in_flight
    on treasury_withdrawals ((true)) where state = 'REQUESTED';
create index treasury_withdrawals_newest on treasury_withdrawals (created_at desc);
