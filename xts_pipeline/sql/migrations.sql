-- Columns added after a table first shipped: files made by an older version gain them on open.
-- Run after schema.sql on every first open of a file in a process; each statement must be idempotent.
ALTER TABLE desired_users ADD COLUMN IF NOT EXISTS computed_at TIMESTAMP;
ALTER TABLE plan_meta ADD COLUMN IF NOT EXISTS full_plan BOOLEAN;
ALTER TABLE plan_meta ADD COLUMN IF NOT EXISTS full_at TIMESTAMP;
ALTER TABLE plan_meta ADD COLUMN IF NOT EXISTS only_user VARCHAR;
-- Per property, the value this pair last wrote to the target user (the three-way diff's base).
ALTER TABLE links ADD COLUMN IF NOT EXISTS applied JSON;
ALTER TABLE plan_meta ADD COLUMN IF NOT EXISTS drift BIGINT;
-- Why a Skipped entry was not written: 'held' (a per-user guardrail) or 'blocked' (the pair was stopped).
ALTER TABLE provisioning_log ADD COLUMN IF NOT EXISTS hold VARCHAR;
UPDATE provisioning_log SET hold = CASE WHEN starts_with(reason, 'blocked:') THEN 'blocked' ELSE 'held' END
WHERE hold IS NULL AND status = 'Skipped' AND (starts_with(reason, 'blocked:') OR starts_with(reason, 'held by'));
-- The quarantine's back-off columns (guardrails/quarantine.py used to add them to an older table itself).
ALTER TABLE quarantine ADD COLUMN IF NOT EXISTS status VARCHAR;
ALTER TABLE quarantine ADD COLUMN IF NOT EXISTS next_retry_at TIMESTAMP;
ALTER TABLE quarantine ADD COLUMN IF NOT EXISTS attempts INTEGER;
ALTER TABLE quarantine ADD COLUMN IF NOT EXISTS released_by VARCHAR;
