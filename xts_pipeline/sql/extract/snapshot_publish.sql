-- The loaded snapshot replaces the target's users in one transaction (each statement binds the tenant).
DELETE FROM target_users WHERE tenant = ?;
INSERT INTO target_users SELECT * FROM target_users_load WHERE tenant = ?;
DELETE FROM target_users_load WHERE tenant = ?;
DELETE FROM target_extensions WHERE tenant = ?;
DELETE FROM target_groups WHERE tenant = ?;
DELETE FROM target_group_members WHERE tenant = ?;
DELETE FROM target_role_members WHERE tenant = ?;
DELETE FROM target_notes WHERE tenant = ?;
DELETE FROM target_policy WHERE tenant = ?;
