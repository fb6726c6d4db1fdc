-- The platform's share locks to the treasury key (issue 15, item 6): a platform payout may now
-- carry a lock key (those recorded before this migration have none), and a platform token the
-- sweep finds spent by someone other than the treasury is kept as an incident of its own.

do $$
declare c text;
begin
    -- The unnamed check "only the platform's share is unlocked, and it always is".
    select conname into c from pg_constraint
     where conrelid = 'payouts'::regclass and contype = 'c'
       and pg_get_constraintdef(oid) like '%lock_pubkey IS NULL%';
    if c is not null then
        execute format('alter table payouts drop constraint %I', c);
    end if;
end $$;
alter table payouts add constraint payouts_locked_unless_platform
    check (party = 'platform' or lock_pubkey is not null);

alter table payouts drop constraint payouts_state_check;
alter table payouts add constraint payouts_state_check
    check (state in ('RECORDED', 'RELEASED', 'SWEPT', 'SPENT_ELSEWHERE'));
alter table payouts add column spent_elsewhere_at timestamptz;
alter table payouts add constraint payouts_spent_elsewhere_when
    check ((state = 'SPENT_ELSEWHERE') = (spent_elsewhere_at is not null));
