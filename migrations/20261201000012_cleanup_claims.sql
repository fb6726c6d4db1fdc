-- A wallet-cleanup run claims the sessions it works on, so runs on several workers at once
-- (the next cron slot's run starting while the last one is still busy) take different
-- sessions instead of queueing for the same wallets' leases. Cleared when the run ends; a
-- claim of a run that died lapses on its own.
alter table sessions add column cleanup_claimed_until timestamptz;
