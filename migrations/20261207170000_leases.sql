-- Short leases the processes sharing the database take turns on (the shims' updates of one
-- subject's emulated referrers index): a row held until `until`, taken over once it has run out
-- (a holder that died), released by deleting it. No connection is held while a lease is.
create table leases (
    key text primary key,
    holder text not null,
    until timestamptz not null
);
