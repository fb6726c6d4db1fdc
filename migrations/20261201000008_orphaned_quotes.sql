-- A payable invoice outlives its wallet (issue 15, item 1). The wallet cleanup now keeps a
-- session's wallet while one of its quotes can still be paid; a watcher that nevertheless
-- finds its quote's wallet gone stops and marks the quote ORPHANED (final), which the admin
-- alerts report, instead of retrying forever.
alter table wallet_quotes drop constraint wallet_quotes_state_check;
alter table wallet_quotes add constraint wallet_quotes_state_check
    check (state in ('UNPAID', 'PAID', 'ISSUED', 'EXPIRED', 'ORPHANED'));

-- The cleanup asks, per ended session, whether its wallet still has a quote open.
create index wallet_quotes_wallet_open on wallet_quotes (wallet_id) where state in ('UNPAID', 'PAID');
-- The alerts list recently orphaned quotes.
create index wallet_quotes_orphaned on wallet_quotes (updated_at) where state = 'ORPHANED';
