-- Invited users of one cycle whose attributes and link failed to write (logged Warning with an error
-- code, journal.PENDING_REASON). Binds: pair key, cycle id.
SELECT count(*) FROM provisioning_log WHERE pair_key = ? AND cycle_id = ? AND status = 'Warning'
AND error_code IS NOT NULL AND reason LIKE 'invited, link pending%'
