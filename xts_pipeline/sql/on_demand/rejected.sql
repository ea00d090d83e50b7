-- Why staging rejected one source user. Binds: source tenant, object id.
SELECT reasons FROM rejected_users WHERE tenant = ? AND id = ?
