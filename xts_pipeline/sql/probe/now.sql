-- The store's clock (as the snapshot's start and the journal's times are taken): when the probe started.
SELECT CAST(now() AS TIMESTAMP)
