-- Where a party of one offer is told what happens: a Web Push subscription (endpoint and the
-- browser's keys) or a webhook (an https URL and the signing secret given to the party once).
-- A target belongs to one party of one offer, never to a session or a user: a claimant's
-- belongs to its claim until the claim wins (then it is the taker's). Endpoints, URLs and
-- secrets are capabilities: shown to nobody but their owner, never logged, and deleted once
-- the offer (or the claim) is over and its payouts are released.
create table notify_targets (
    id          uuid primary key,
    offer_id    uuid not null references offers (id),
    role        text not null check (role in ('maker', 'taker')),
    claim_id    uuid references claims (id),
    kind        text not null check (kind in ('webpush', 'webhook')),
    endpoint    text not null check (length(endpoint) between 1 and 2048),
    p256dh      text check (length(p256dh) <= 200),
    auth        text check (length(auth) <= 100),
    secret      text check (length(secret) <= 200),
    created_at  timestamptz not null default now(),
    check ((kind = 'webpush') = (p256dh is not null and auth is not null)),
    check ((kind = 'webhook') = (secret is not null)),
    check (claim_id is null or role = 'taker')
);
create index notify_targets_offer on notify_targets (offer_id, role);
create index notify_targets_claim on notify_targets (claim_id) where claim_id is not null;
-- One row per endpoint per party: setting the same subscription again replaces it.
create unique index notify_targets_once
    on notify_targets (offer_id, role, coalesce(claim_id, '00000000-0000-0000-0000-000000000000'), endpoint);
