-- Graph returns [] for an empty collection and null for an empty string property: both mean "no value".
CREATE OR REPLACE TEMP MACRO norm(v) AS
  CASE WHEN v IS NULL OR CAST(v AS VARCHAR) IN ('null', '[]', '""') THEN 'null' ELSE CAST(v AS VARCHAR) END
