-- Trade data (payment details, receipts, evidence, dispute messages) is the most personal
-- thing the platform stores. From here on it is stored sealed (AES-256-GCM under a key of its
-- own offer derived from DATA_SECRETS; `key_id` names the secret, 0 = plaintext written before
-- this migration, which the retention job re-seals), and RETENTION_TRADE_DATA_DAYS after its
-- offer became final the retention job empties it. The rows stay, as the record that the data
-- existed and of when it was deleted; the money records (payouts, the ledger) are never
-- touched.

alter table offers alter column payment_details drop not null;
alter table offers add column payment_details_sealed bytea;
alter table offers add column data_key_id smallint not null default 0 check (data_key_id >= 0);
alter table offers add column trade_data_deleted_at timestamptz;
alter table offers add constraint offers_payment_details_until_deleted check (
    case when trade_data_deleted_at is null
         then (payment_details is null) <> (payment_details_sealed is null)
              and (payment_details_sealed is null) = (data_key_id = 0)
         else payment_details is null and payment_details_sealed is null end);
-- What the retention job looks for: final offers whose data is still there, oldest first.
create index offers_trade_data_kept on offers (state_entered_at)
    where trade_data_deleted_at is null
      and status in ('COMPLETED', 'EXPIRED', 'RESOLVED', 'CANCELLED');

alter table receipts alter column image drop not null;
alter table receipts add column note_sealed bytea;
alter table receipts add column key_id smallint not null default 0 check (key_id >= 0);
alter table receipts add column deleted_at timestamptz;
alter table receipts add constraint receipts_image_until_deleted check (
    (image is null) = (deleted_at is not null)
    and (deleted_at is null or (note is null and note_sealed is null))
    and (key_id = 0 or note is null)
    and (key_id > 0 or note_sealed is null));

alter table dispute_evidence alter column image drop not null;
alter table dispute_evidence add column key_id smallint not null default 0 check (key_id >= 0);
alter table dispute_evidence add column deleted_at timestamptz;
alter table dispute_evidence add constraint dispute_evidence_image_until_deleted
    check ((image is null) = (deleted_at is not null));

alter table dispute_messages alter column body drop not null;
alter table dispute_messages add column body_sealed bytea;
alter table dispute_messages add column key_id smallint not null default 0 check (key_id >= 0);
alter table dispute_messages add column deleted_at timestamptz;
-- A message holds its text in one form (plaintext under key 0, sealed otherwise) until deleted.
alter table dispute_messages add constraint dispute_messages_body_until_deleted check (
    (deleted_at is not null and body is null and body_sealed is null)
    or (deleted_at is null and key_id = 0 and body is not null and body_sealed is null)
    or (deleted_at is null and key_id > 0 and body is null and body_sealed is not null));

-- Rows the retention job still has to re-seal under the current key (any other key id).
create index receipts_key on receipts (key_id) where deleted_at is null;
create index dispute_evidence_key on dispute_evidence (key_id) where deleted_at is null;
create index dispute_messages_key on dispute_messages (key_id) where deleted_at is null;
create index offers_data_key on offers (data_key_id) where trade_data_deleted_at is null;
