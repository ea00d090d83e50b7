-- The change probe's private copy of the probed targets' snapshot tables (temporary tables of its one
-- connection, renamed onto the real names so that the snapshot's own statements and the pair fingerprint's
-- queries read and write them): the store itself is never written. $tenants: the probed target tenants.
CREATE OR REPLACE TEMP TABLE probe_target_users AS SELECT * FROM target_users WHERE list_contains($tenants, tenant);
CREATE OR REPLACE TEMP TABLE probe_target_users_load AS SELECT * FROM target_users_load LIMIT 0;
CREATE OR REPLACE TEMP TABLE probe_target_extensions AS SELECT * FROM target_extensions WHERE list_contains($tenants, tenant);
CREATE OR REPLACE TEMP TABLE probe_target_groups AS SELECT * FROM target_groups WHERE list_contains($tenants, tenant);
CREATE OR REPLACE TEMP TABLE probe_target_group_members AS SELECT * FROM target_group_members WHERE list_contains($tenants, tenant);
CREATE OR REPLACE TEMP TABLE probe_target_role_members AS SELECT * FROM target_role_members WHERE list_contains($tenants, tenant);
CREATE OR REPLACE TEMP TABLE probe_target_notes AS SELECT * FROM target_notes WHERE list_contains($tenants, tenant);
CREATE OR REPLACE TEMP TABLE probe_target_policy AS SELECT * FROM target_policy WHERE list_contains($tenants, tenant);
CREATE OR REPLACE TEMP TABLE probe_watermarks AS SELECT * FROM watermarks;
ALTER TABLE probe_watermarks ADD PRIMARY KEY (name);
ALTER TABLE probe_target_users RENAME TO target_users;
ALTER TABLE probe_target_users_load RENAME TO target_users_load;
ALTER TABLE probe_target_extensions RENAME TO target_extensions;
ALTER TABLE probe_target_groups RENAME TO target_groups;
ALTER TABLE probe_target_group_members RENAME TO target_group_members;
ALTER TABLE probe_target_role_members RENAME TO target_role_members;
ALTER TABLE probe_target_notes RENAME TO target_notes;
ALTER TABLE probe_target_policy RENAME TO target_policy;
ALTER TABLE probe_watermarks RENAME TO watermarks;
