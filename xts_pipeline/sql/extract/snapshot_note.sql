-- What the snapshot could not read (executemany).
INSERT INTO target_notes (tenant, topic, note, noted_at) VALUES (?, 'snapshot', ?, now())
