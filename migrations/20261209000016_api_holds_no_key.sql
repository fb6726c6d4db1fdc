-- The api holds no key that spends (docs/architecture.md, "Keys").
--
-- Quote locks: the api derives each quote's NUT-20 public key from the workers' extended
-- public key at a random non-hardened path; only workers derive its private key. The path is
-- public (it is useless without the workers' extended private key). A quote has either this
-- path or, if made before, the nonce of the earlier derivation from the wallet's seed.
alter table wallet_quotes
  add column lock_path text check (lock_path ~ '^[0-9]{1,10}/[0-9]{1,10}$'),
  add constraint wallet_quotes_one_lock check (lock_path is null or lock_nonce is null);

-- Funding by token goes through a worker: the api seals the token to the workers' public key
-- (it cannot open it again) and a worker receives it. The sealed bytes live only while the
-- intent is OPEN: every move out of OPEN clears them in the same statement. `reason` says,
-- for an intent that ended without funding the offer, why (a code the maker can read).
alter table fund_intents
  add column sealed_token bytea,
  add column reason text,
  add constraint fund_intents_sealed_only_open check (state = 'OPEN' or sealed_token is null);
