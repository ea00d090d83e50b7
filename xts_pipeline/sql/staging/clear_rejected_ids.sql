-- An incremental staging forgets the rejections of the rows it re-validates ($ids).
DELETE FROM rejected_users WHERE tenant = $tenant AND list_contains($ids, id)
