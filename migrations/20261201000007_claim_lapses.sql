-- Claim griefing (issue 15, item 3): a claim that lapsed unpaid is remembered for a while, so
-- the session that let it lapse cannot claim the same offer again straight away (hiding it from
-- the book for another bond timer). One row per offer and session, rewritten on every lapse;
-- the unclaim step prunes an offer's rows once they are past the cooldown.
create table claim_lapses (
    offer_id    uuid not null references offers (id),
    session_id  uuid not null,
    lapsed_at   timestamptz not null default now(),
    primary key (offer_id, session_id)
);
