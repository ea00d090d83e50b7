-- xts_pipeline.external's rule (creationType Invitation, userType Guest, an #EXT# UPN, or any
-- externalUserState) over four SQL expressions: rows it matches are never a pair's source users.
-- fragment creation: the creationType expression
-- fragment user_type: the userType expression
-- fragment upn: the userPrincipalName expression
-- fragment state: the externalUserState expression
(lower(coalesce({{creation}}, '')) = 'invitation' OR lower(coalesce({{user_type}}, '')) = 'guest' OR upper(coalesce({{upn}}, '')) LIKE '%#EXT#%' OR coalesce(trim({{state}}), '') <> '')
