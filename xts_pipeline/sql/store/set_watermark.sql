-- Insert or move one watermark.
INSERT OR REPLACE INTO watermarks (name, value, info) VALUES ($name, $value, $info)
