-- The staging pre-check over raw_frame's flattened columns: true only for a row the pandera schema surely
-- accepts, so pandera validates the other rows alone. It must never pass a row the schema rejects; it may
-- fail rows the schema accepts. Its UPN and mail patterns are the schema's on printable ASCII (\x20-\x7e),
-- where RE2 and Python's `re` agree; a non-ASCII UPN or mail is left to pandera. Full matches are stricter
-- than `re.match` with `$`, and length() counts code points like Python's len(). An expression, not a query.
-- fragment guid: staging.GUID, the id pattern
-- fragment no_control: staging.NO_CONTROL, text without control characters
-- fragment upn_min: staging.UPN_LENGTH[0]
-- fragment upn_max: staging.UPN_LENGTH[1]
-- fragment mail_min: staging.MAIL_LENGTH[0]
-- fragment mail_max: staging.MAIL_LENGTH[1]
-- fragment display_name_max: staging.TEXT_COLUMNS' displayName limit (display_name is required)
-- fragment optional_text: staging/precheck_text for each other text column, joined with AND
coalesce(regexp_full_match(id, '{{guid}}')
    AND (length(user_principal_name) BETWEEN {{upn_min}} AND {{upn_max}}
         AND regexp_full_match(user_principal_name, '[\x20-\x7e]*')
         AND regexp_full_match(user_principal_name, '[\x21-\x3f\x41-\x7e]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+'))
    AND (mail IS NULL OR (length(mail) BETWEEN {{mail_min}} AND {{mail_max}}
         AND regexp_full_match(mail, '[\x20-\x7e]*')
         AND regexp_full_match(mail, '[\x21\x23-\x27\x2a\x2b\x2d-\x39\x3d\x3f\x41-\x5a\x5e-\x7e]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+')))
    AND user_type IN ('Member', 'Guest')
    AND (creation_type IS NULL OR regexp_full_match(creation_type, '{{no_control}}'))
    AND (length(display_name) BETWEEN 1 AND {{display_name_max}} AND regexp_full_match(display_name, '{{no_control}}'))
    AND {{optional_text}}, false)
