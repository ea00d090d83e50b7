-- An incremental run: the mapping errors of the re-evaluated users ($changed), recorded again next.
DELETE FROM desired_errors WHERE pair_key = $pair AND list_contains($changed, source_object_id)
