-- Rejected users an incremental staging keeps: not among the rows it re-validates ($ids), still in raw_users.
SELECT count(*) FROM rejected_users r WHERE tenant = $tenant AND NOT list_contains($ids, id)
  AND EXISTS (SELECT 1 FROM raw_users w WHERE w.tenant = r.tenant AND w.id = r.id)
