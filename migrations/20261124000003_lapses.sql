-- Lapses: when a claim lapses the offer returns to the book until the end of the lifetime the
-- maker chose, so that end is kept apart from the per-state deadline.
alter table offers add column listed_until timestamptz;
