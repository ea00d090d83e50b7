-- An incremental run: the desired rows of the re-evaluated users ($changed), replaced next.
DELETE FROM desired_users WHERE pair_key = $pair AND list_contains($changed, source_object_id)
