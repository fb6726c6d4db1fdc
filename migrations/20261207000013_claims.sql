-- Claims race by their bonds. A claim used to move its offer out of the book until its bond
-- timer ran out, for free: many unlinkable sessions could keep the whole book hidden. Now a
-- claim is a row of its own with its own bond invoice and deadline; the offer stays listed
-- (INVOICE_PAID) while any number of claims wait, and the first bond minted moves it to
-- TAKER_BOND_PAID (compare-and-set on the offer). Every other claim then ends LOST and a bond
-- paid for it is refunded to its payer's key. INVOICE_CREATED is no longer an offer status.
create table claims (
    id             uuid primary key,
    offer_id       uuid not null references offers (id),
    session_id     uuid not null references sessions (id),
    payout_pubkey  text not null check (payout_pubkey ~ '^[0-9a-f]{64}$'),
    bond_quote_id  text unique,
    -- The bond invoice as the taker got it, so a client that lost the answer can read it again.
    bond_invoice   text check (length(bond_invoice) <= 4096),
    bond_sats      bigint not null check (bond_sats >= 0),
    bond_invoice_expires_at timestamptz,
    status         text not null default 'PENDING'
                   check (status in ('PENDING', 'WON', 'LAPSED', 'LOST')),
    stake          integer not null default 0 check (stake >= 0),
    expires_at     timestamptz not null,
    created_at     timestamptz not null default now(),
    ended_at       timestamptz,
    check ((status = 'PENDING') = (ended_at is null))
);
-- One waiting claim per session and offer; one winner per offer.
create unique index claims_pending_once on claims (offer_id, session_id) where status = 'PENDING';
create unique index claims_one_winner on claims (offer_id) where status = 'WON';
create index claims_pending_session on claims (session_id) where status = 'PENDING';
create index claims_pending_deadline on claims (expires_at) where status = 'PENDING';
create index claims_session on claims (session_id);

-- A taker's reputation outputs belong to its claim: several claimants send theirs for one
-- offer, and only the winner's can be earned.
alter table reputation_outputs add column claim_id uuid references claims (id);
create index reputation_outputs_claim on reputation_outputs (claim_id) where claim_id is not null;

-- Claims under way when this runs become rows, and their offers go back to the book.
insert into claims (id, offer_id, session_id, payout_pubkey, bond_quote_id, bond_sats, stake,
                    expires_at, created_at)
select gen_random_uuid(), id, taker_session_id, taker_payout_pubkey, bond_quote_id,
       taker_bond_sats, taker_stake, coalesce(expires_at, now()), coalesce(claimed_at, now())
  from offers
 where status = 'INVOICE_CREATED';
update reputation_outputs r set claim_id = c.id
  from claims c
 where r.offer_id = c.offer_id and r.role = 'taker' and r.state = 'pending';
update offers set status = 'INVOICE_PAID', taker_session_id = null, taker_payout_pubkey = null,
       bond_quote_id = null, claimed_at = null, taker_stake = 0, state_entered_at = now(),
       expires_at = greatest(coalesce(listed_until, now()), now()), updated_at = now()
 where status = 'INVOICE_CREATED';
-- Their old lapse jobs name a status that no longer exists; the claims' own lapse is the
-- expiry sweep's (it lapses overdue claims).
do $$
begin
    if to_regclass('apalis.jobs') is not null then
        delete from apalis.jobs
         where job_type = 'openpleb.lapse_offer' and status in ('Pending', 'Failed')
           and convert_from(job, 'UTF8') like '%"INVOICE_CREATED"%';
    end if;
end $$;

-- DETAILS_DISPUTED: the taker, holding a paid bond, reports that the maker's payment details
-- do not work (a closed account, a wrong QR); the maker forfeits or counters, then an admin.
alter table offers drop constraint offers_status_check;
alter table offers add constraint offers_status_check check (status in (
    'CREATED', 'INVOICE_PAID', 'TAKER_BOND_PAID', 'RECEIPT_SUBMITTED', 'MARKED_WITH_ISSUE',
    'DISPUTED', 'DETAILS_DISPUTED', 'COMPLETED', 'EXPIRED', 'RESOLVED', 'CANCELLED'));
alter table offers drop constraint offers_resolved_outcome_check;
alter table offers add constraint offers_resolved_outcome_check check (resolved_outcome in
    ('COMPLETED', 'REFUND_MAKER', 'MAKER_WINS', 'TAKER_WINS', 'RETURN', 'SPLIT', 'BAD_DETAILS'));

-- A dispute is about the receipt (raised by the maker) or about the payment details (raised by
-- the taker, who reveals its key first; the maker's key is revealed when it counters).
alter table disputes add column kind text not null default 'receipt'
    check (kind in ('receipt', 'payment_details'));
alter table disputes alter column maker_pubkey drop not null;
alter table disputes drop constraint disputes_reason_check;
alter table disputes add constraint disputes_reason_check
    check (reason in ('not_received', 'wrong_amount', 'other', 'details_not_working'));
alter table disputes drop constraint disputes_resolution_check;
alter table disputes add constraint disputes_resolution_check
    check (resolution in ('MAKER_WINS', 'TAKER_WINS', 'RETURN', 'SPLIT', 'BAD_DETAILS'));
alter table disputes add constraint disputes_receipt_has_maker_key
    check (kind <> 'receipt' or maker_pubkey is not null);
alter table dispute_messages drop constraint dispute_messages_kind_check;
alter table dispute_messages add constraint dispute_messages_kind_check
    check (kind in ('issue', 'dispute', 'counter', 'resolution', 'details'));
