-- The delta link a tenant's last stored round ended with (none: the next round is a full read).
SELECT delta_link FROM delta_cursors WHERE tenant = ?
