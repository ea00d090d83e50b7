-- A target snapshot starts from an empty load table (a read that died midway left its pages there).
DELETE FROM target_users_load WHERE tenant = ?
