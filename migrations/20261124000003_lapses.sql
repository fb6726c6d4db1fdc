-- Lapses: when a claim lapses the offer returns to the book until the end of the lifetime the
-- maker chose, so that end is kept apart from the per-state deadline.
alter table offers add column listed_until timestamptz;

-- Sats found in an expired session's wallet with no offer to account for them are swept back
-- to that session's last payout key ('sweep'); they never entered the ledger, so they do not
-- leave it either.
alter table payouts drop constraint payouts_purpose_check;
alter table payouts add constraint payouts_purpose_check
    check (purpose in ('settlement', 'refund', 'late_refund', 'sweep'));

-- Set once an ended session's wallet is gone, so the cleanup does not look at it again.
alter table sessions add column wallet_removed_at timestamptz;
create index sessions_cleanup on sessions (expires_at) where wallet_removed_at is null;
