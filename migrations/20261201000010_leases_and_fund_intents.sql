-- Fenced wallet leases (issue 15, item 7): every take of a lease draws a new generation from a
-- sequence. An open wallet remembers the generation it was opened under and refuses to write
-- once that generation is no longer the lease's (taken by another process, or lapsed), so a
-- process whose lease was taken stops before its next write. Leases existing at migration
-- time get a generation of their own.
create sequence wallet_lease_generation;
alter table wallet_leases
    add column generation bigint not null default nextval('wallet_lease_generation');
