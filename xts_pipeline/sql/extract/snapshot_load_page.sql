-- One page of target users (the registered Arrow table page_tbl, in target_users' column order).
INSERT INTO target_users_load SELECT * FROM page_tbl
