-- The last value and info a step recorded under one watermark name.
SELECT value, info FROM watermarks WHERE name = $name
