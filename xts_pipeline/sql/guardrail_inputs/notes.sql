-- What the target's snapshot could not read. Binds: target tenant.
SELECT note FROM target_notes WHERE tenant = ? ORDER BY note
