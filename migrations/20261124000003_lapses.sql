-- Lapses: when a claim lapses the offer returns to the book until the end of the lifetime the
-- maker chose, so that end is kept apart from the per-state deadline.
alter table offers add column listed_until timestamptz;

-- Sats found in an expired session's wallet with no offer to account for them are swept back
-- to that session's last payout key ('sweep'); they never entered the ledger, so they do not
-- leave it either.
alter table payouts drop constraint payouts_purpose_check;
alter table payouts add constraint payouts_purpose_check
    check (purpose in ('settlement', 'refund', 'late_refund', 'sweep'));
