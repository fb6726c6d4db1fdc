-- Disputes: the issue a maker raises, the taker's answer, the maker's, an admin's resolution;
-- the pubkey reveals that link a registered user to a trade (the only such link); evidence;
-- and the append-only record of what admins did.

-- The first schema's placeholder was never written to.
drop table disputes;

-- One per offer that went through an issue. `maker_pubkey` and `taker_pubkey` are the
-- revealed registered keys (BIP-340 signatures checked when revealed); dispute statistics per
-- pubkey are counted from them and nothing else.
create table disputes (
    offer_id      uuid primary key references offers (id),
    stage         text not null
                  check (stage in ('waiting_taker', 'waiting_maker', 'waiting_admin', 'resolved')),
    reason        text not null check (reason in ('not_received', 'wrong_amount', 'other')),
    maker_pubkey  text not null check (maker_pubkey ~ '^[0-9a-f]{64}$'),
    taker_pubkey  text check (taker_pubkey ~ '^[0-9a-f]{64}$'),
    opened_at     timestamptz not null default now(),
    disputed_at   timestamptz,
    countered_at  timestamptz,
    resolved_at   timestamptz,
    resolution    text check (resolution in ('MAKER_WINS', 'TAKER_WINS', 'RETURN', 'SPLIT')),
    resolved_by   text check (resolved_by in
                              ('taker_forfeit', 'taker_silence', 'maker_forfeit', 'admin')),
    check ((stage = 'resolved') = (resolution is not null)),
    check ((stage = 'resolved') = (resolved_by is not null)),
    check ((stage = 'resolved') = (resolved_at is not null)),
    check ((taker_pubkey is null) = (disputed_at is null))
);
create index disputes_maker_pubkey on disputes (maker_pubkey);
create index disputes_taker_pubkey on disputes (taker_pubkey) where taker_pubkey is not null;
create index disputes_open on disputes (opened_at) where stage <> 'resolved';

-- What each side (and the resolving admin) wrote. Shown to the parties and admins only; never
-- logged.
create table dispute_messages (
    id          bigserial primary key,
    offer_id    uuid not null references disputes (offer_id),
    author      text not null check (author in ('maker', 'taker', 'admin')),
    kind        text not null check (kind in ('issue', 'dispute', 'counter', 'resolution')),
    body        text not null check (length(body) <= 2000),
    created_at  timestamptz not null default now()
);
create index dispute_messages_offer on dispute_messages (offer_id, id);

-- Images each side adds (at most three per side, checked by the step that adds them).
create table dispute_evidence (
    id            uuid primary key,
    offer_id      uuid not null references disputes (offer_id),
    author        text not null check (author in ('maker', 'taker')),
    content_type  text not null check (content_type in ('image/png', 'image/jpeg', 'image/webp')),
    image         bytea not null check (octet_length(image) between 1 and 10485760),
    created_at    timestamptz not null default now()
);
create index dispute_evidence_offer on dispute_evidence (offer_id, author);

-- Every admin write: who, what, on what, when, why. Rows are never changed or removed.
create table admin_actions (
    id          bigserial primary key,
    admin_name  text not null,
    action      text not null,
    target      text not null,
    note        text,
    created_at  timestamptz not null default now()
);
create function admin_actions_append_only() returns trigger language plpgsql as $$
begin
    raise exception 'admin_actions is append-only';
end $$;
create trigger admin_actions_append_only before update or delete or truncate on admin_actions
    for each statement execute function admin_actions_append_only();
