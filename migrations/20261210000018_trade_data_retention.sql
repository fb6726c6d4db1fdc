-- Trade data (receipts, evidence, payment details, dispute messages) is kept no longer than it
-- is needed: RETENTION_TRADE_DATA_DAYS after its offer became final the retention job removes
-- it. The rows stay, as the record that the data existed and of when it was deleted; the
-- money records (payouts, the ledger) are never touched.

alter table offers alter column payment_details drop not null;
alter table offers add column trade_data_deleted_at timestamptz;
alter table offers add constraint offers_payment_details_until_deleted
    check ((payment_details is null) = (trade_data_deleted_at is not null));
-- What the retention job looks for: final offers whose data is still there, oldest first.
create index offers_trade_data_kept on offers (state_entered_at)
    where trade_data_deleted_at is null
      and status in ('COMPLETED', 'EXPIRED', 'RESOLVED', 'CANCELLED');

alter table receipts alter column image drop not null;
alter table receipts add column deleted_at timestamptz;
alter table receipts add constraint receipts_image_until_deleted
    check ((image is null) = (deleted_at is not null) and (deleted_at is null or note is null));

alter table dispute_evidence alter column image drop not null;
alter table dispute_evidence add column deleted_at timestamptz;
alter table dispute_evidence add constraint dispute_evidence_image_until_deleted
    check ((image is null) = (deleted_at is not null));

alter table dispute_messages alter column body drop not null;
alter table dispute_messages add column deleted_at timestamptz;
alter table dispute_messages add constraint dispute_messages_body_until_deleted
    check ((body is null) = (deleted_at is not null));
