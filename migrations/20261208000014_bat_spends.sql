-- A BAT is spent at the mint with no database transaction open, so that a slow mint cannot
-- hold a pooled connection per session being opened. Its hash is recorded (and committed)
-- first, which keeps it single use; then the mint spends it; then `spent_at` is set and the
-- session opened (or renewed) in a second short transaction.
--
-- A row without `spent_at` is a spend in flight, or one whose answer never came (a timeout, a
-- lost connection, a 5xx, a crash in between): the mint may have spent that BAT, so it is
-- never accepted again (burnt). A BAT the mint refused is deleted again: the mint refuses it
-- on any retry anyway, and made-up tokens leave no rows behind.
alter table bat_redemptions add column spent_at timestamptz;

-- Every row so far was recorded in the transaction that spent it and opened its session.
update bat_redemptions set spent_at = redeemed_at;
