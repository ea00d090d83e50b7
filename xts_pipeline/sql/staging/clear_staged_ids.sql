-- An incremental staging replaces the staged rows it re-validated ($ids).
DELETE FROM staged_users WHERE tenant = $tenant AND list_contains($ids, id)
