-- The pre-check of one optional text column (staging/precheck): NULL, or 1..max_length characters without
-- a control character.
-- fragment column: the staged column (staging.TEXT_COLUMNS)
-- fragment max_length: its Graph length limit (staging.TEXT_COLUMNS)
-- fragment no_control: staging.NO_CONTROL
({{column}} IS NULL OR (length({{column}}) BETWEEN 1 AND {{max_length}} AND regexp_full_match({{column}}, '{{no_control}}')))
