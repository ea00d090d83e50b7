-- A small round's new rows, after delete_replaced.
INSERT INTO raw_users SELECT * FROM raw_round
