-- The staging database's schema: every table, in one place. xts_pipeline/store.py runs it on first use.
--
-- Conventions (store.py parses them; tests/test_schema.py holds them):
--   * the `--` lines right above a CREATE TABLE say what the table is for; `-- owner: <module>` names the
--     one module that writes it (every other module reads it, or calls the owner's functions);
--   * every column carries a `-- description` on its line: store.py stores it as the column's DuckDB
--     comment (`duckdb_columns().comment`) and the assets show it as Dagster's column schema;
--   * a table with another's columns (same names, types, descriptions; no keys) is one line after the
--     original's, `CREATE TABLE IF NOT EXISTS <copy> AS SELECT * FROM <original> LIMIT 0`;
--   * statements end with `);` on a line of its own.
-- A column added after a table first shipped goes here and into migrations.sql (older files gain it on open).

-- owner: xts_pipeline.extract
-- Where each tenant's users delta round stands (Graph's @odata.deltaLink).
CREATE TABLE IF NOT EXISTS delta_cursors (
    tenant VARCHAR PRIMARY KEY,  -- tenant name from the topology config
    delta_link VARCHAR,  -- the @odata.deltaLink the next delta round starts from
    updated_at TIMESTAMP,  -- when the cursor last moved
    full_sync_at TIMESTAMP  -- when the last full (non-delta) read finished
);

-- owner: xts_pipeline.extract
-- Where each target's users delta stands: a link taken ($deltatoken=latest) just before its snapshot read
-- the users, published with the snapshot. The change probe (xts_pipeline/probe.py) reads what changed since.
CREATE TABLE IF NOT EXISTS target_cursors (
    tenant VARCHAR PRIMARY KEY,  -- target tenant name from the topology config
    delta_link VARCHAR,  -- the @odata.deltaLink of users changed since the snapshot started reading
    taken_at TIMESTAMP  -- when the snapshot holding it was published
);

-- owner: xts_pipeline.extract
-- Each source tenant's users as Graph returned them, kept current by delta rounds.
CREATE TABLE IF NOT EXISTS raw_users (
    tenant VARCHAR,  -- tenant name from the topology config
    id VARCHAR,  -- Entra object id of the user in this tenant
    data JSON,  -- the user as Graph returned it (JSON)
    seen_cycle VARCHAR,  -- last extraction run that saw the user
    updated_at TIMESTAMP,  -- when the row last changed
    PRIMARY KEY (tenant, id)
);

-- owner: xts_pipeline.extract
-- Members of the groups a pair assigns (scoping by group), read with the source's users.
CREATE TABLE IF NOT EXISTS source_group_members (
    tenant VARCHAR,  -- tenant name from the topology config
    group_ref VARCHAR,  -- the group as the config names it (id or display name)
    group_id VARCHAR,  -- Entra object id of the group
    member_id VARCHAR  -- object id of a (transitive) member user
);

-- owner: xts_pipeline.staging
-- Source users that passed validation, one typed row each.
CREATE TABLE IF NOT EXISTS staged_users (
    tenant VARCHAR,  -- tenant name from the topology config
    id VARCHAR,  -- Entra object id of the user in this tenant
    user_principal_name VARCHAR,  -- userPrincipalName
    mail VARCHAR,  -- mail
    display_name VARCHAR,  -- displayName
    user_type VARCHAR,  -- userType: Member or Guest
    creation_type VARCHAR,  -- creationType (Invitation marks a B2B user)
    account_enabled BOOLEAN,  -- accountEnabled
    attrs JSON,  -- the other synced attributes (JSON)
    PRIMARY KEY (tenant, id)
);

-- owner: xts_pipeline.staging
-- Source users that failed validation, with the reasons (never synced until fixed at the source).
CREATE TABLE IF NOT EXISTS rejected_users (
    tenant VARCHAR,  -- tenant name from the topology config
    id VARCHAR,  -- Entra object id of the user in this tenant
    user_principal_name VARCHAR,  -- userPrincipalName
    reasons VARCHAR,  -- what failed validation
    data JSON,  -- the user as Graph returned it (JSON)
    rejected_at TIMESTAMP  -- when the user was rejected
);

-- owner: xts_pipeline.extract
-- Each target tenant's users (linked B2B users, guests, members) at its last snapshot.
CREATE TABLE IF NOT EXISTS target_users (
    tenant VARCHAR,  -- tenant name from the topology config
    id VARCHAR,  -- Entra object id of the user in this tenant
    user_principal_name VARCHAR,  -- userPrincipalName
    mail VARCHAR,  -- mail
    display_name VARCHAR,  -- displayName
    user_type VARCHAR,  -- userType: Member or Guest
    creation_type VARCHAR,  -- creationType (Invitation marks a B2B user)
    external_user_state VARCHAR,  -- externalUserState of a B2B user
    account_enabled BOOLEAN,  -- accountEnabled
    link_source_tenant_id VARCHAR,  -- source tenant id stamped on a synced user (xtsSourceTenantId extension)
    link_source_object_id VARCHAR,  -- source object id stamped on a synced user (xtsSourceObjectId extension)
    link_sync_config VARCHAR,  -- pair key stamped on a synced user (xtsSyncConfig extension)
    attrs JSON,  -- the other synced attributes (JSON)
    PRIMARY KEY (tenant, id)
);

-- owner: xts_pipeline.extract
-- Pages of a target read land here first, then replace target_users in one transaction.
CREATE TABLE IF NOT EXISTS target_users_load AS SELECT * FROM target_users LIMIT 0;

-- owner: xts_pipeline.extract
-- The link extension attributes registered on each target's app (short name -> extension_<app id>_name).
CREATE TABLE IF NOT EXISTS target_extensions (
    tenant VARCHAR,  -- tenant name from the topology config
    short_name VARCHAR,  -- extension name without its app prefix, e.g. xtsSourceObjectId
    full_name VARCHAR,  -- the property name Graph uses, extension_<app id>_<short name>
    PRIMARY KEY (tenant, short_name)
);

-- owner: xts_pipeline.extract
-- Each target's groups (dynamic membership rules are evaluated against planned users).
CREATE TABLE IF NOT EXISTS target_groups (
    tenant VARCHAR,  -- tenant name from the topology config
    id VARCHAR,  -- Entra object id of the group
    display_name VARCHAR,  -- displayName
    group_types JSON,  -- groupTypes (DynamicMembership marks a dynamic group) (JSON)
    membership_rule VARCHAR,  -- membershipRule of a dynamic group
    membership_rule_processing_state VARCHAR,  -- membershipRuleProcessingState: On or Paused
    is_assignable_to_role BOOLEAN,  -- isAssignableToRole (a role-assignable group confers privilege)
    attrs JSON,  -- the group's other properties (JSON)
    PRIMARY KEY (tenant, id)
);

-- owner: xts_pipeline.extract
-- Members of each target group.
CREATE TABLE IF NOT EXISTS target_group_members (
    tenant VARCHAR,  -- tenant name from the topology config
    group_id VARCHAR,  -- Entra object id of the group
    member_id VARCHAR  -- object id of a member
);

-- owner: xts_pipeline.extract
-- Holders of activated directory roles (protected identities for the impersonation guardrail).
CREATE TABLE IF NOT EXISTS target_role_members (
    tenant VARCHAR,  -- tenant name from the topology config
    role_id VARCHAR,  -- object id of the activated directory role
    role_name VARCHAR,  -- displayName of the role
    member_id VARCHAR  -- object id of a holder of the role
);

-- owner: xts_pipeline.extract
-- What a target snapshot could not read (e.g. a missing optional permission), shown by the checks.
CREATE TABLE IF NOT EXISTS target_notes (
    tenant VARCHAR,  -- tenant name from the topology config
    topic VARCHAR,  -- which read the note is about (snapshot)
    note VARCHAR,  -- what could not be read, and what to do
    noted_at TIMESTAMP  -- when the note was made
);

-- owner: xts_pipeline.extract
-- Each target's cross-tenant access policy towards each source (inbound user sync allowed or not).
CREATE TABLE IF NOT EXISTS target_policy (
    tenant VARCHAR,  -- target tenant name from the topology config
    source_tenant VARCHAR,  -- source tenant name from the topology config
    source_tenant_id VARCHAR,  -- tenant id of the source
    is_sync_allowed BOOLEAN,  -- identitySynchronization isSyncAllowed of the partner policy
    policy JSON,  -- the partner configuration as Graph returned it (JSON)
    read_at TIMESTAMP,  -- when the policy was read
    PRIMARY KEY (tenant, source_tenant)
);

-- owner: xts_pipeline.desired
-- What each pair wants each in-scope source user to look like in its target.
CREATE TABLE IF NOT EXISTS desired_users (
    pair_key VARCHAR,  -- sync pair, SOURCE__TARGET
    source_tenant_id VARCHAR,  -- tenant id of the source
    source_object_id VARCHAR,  -- object id of the user in the source
    user_principal_name VARCHAR,  -- userPrincipalName in the source
    mail VARCHAR,  -- mail in the source
    display_name VARCHAR,  -- displayName in the source
    account_enabled BOOLEAN,  -- accountEnabled the target user should have
    desired_create JSON,  -- attributes a create would send (JSON)
    desired_update JSON,  -- attributes an update would compare (JSON)
    computed_at TIMESTAMP,  -- when the desired state was computed
    PRIMARY KEY (pair_key, source_object_id)
);

-- owner: xts_pipeline.desired
-- Source users whose attribute mappings failed to evaluate (left out of the plan).
CREATE TABLE IF NOT EXISTS desired_errors (
    pair_key VARCHAR,  -- sync pair, SOURCE__TARGET
    source_object_id VARCHAR,  -- object id of the user in the source
    user_principal_name VARCHAR,  -- userPrincipalName in the source
    error VARCHAR  -- which mapping failed, and why
);

-- owner: xts_pipeline.planner
-- Each pair's current plan: one row per source user and what writing it to the target takes.
CREATE TABLE IF NOT EXISTS plan (
    pair_key VARCHAR,  -- sync pair, SOURCE__TARGET
    cycle_id VARCHAR,  -- run id of the plan step that produced the row
    change_id VARCHAR,  -- stable id of one planned write
    source_tenant_id VARCHAR,  -- tenant id of the source
    source_object_id VARCHAR,  -- object id of the user in the source
    target_user_id VARCHAR,  -- object id of the matched user in the target (empty for a create)
    action VARCHAR,  -- create / update / disable / delete / restore / skip
    changes JSON,  -- attribute changes, each {property, old, new} (JSON)
    desired JSON,  -- full desired attributes of the user (JSON)
    reason VARCHAR,  -- why the planner chose this action
    match VARCHAR,  -- how the source user was matched to a target user
    mail VARCHAR,  -- mail of the source user
    user_principal_name VARCHAR  -- userPrincipalName of the source user
);

-- owner: xts_pipeline.planner
-- One row per pair about its current plan: which cycle made it, its fingerprint, whether the pair may sync.
CREATE TABLE IF NOT EXISTS plan_meta (
    pair_key VARCHAR PRIMARY KEY,  -- sync pair, SOURCE__TARGET
    cycle_id VARCHAR,  -- run id of the plan step that made the current plan
    fingerprint VARCHAR,  -- hash of the plan's content, the one `xts approve` records
    sync_allowed BOOLEAN,  -- whether the target's policy allows sync from the source
    blocked_reason VARCHAR,  -- why the pair writes nothing this cycle, if it does not
    planned_at TIMESTAMP,  -- when the plan was made
    full_plan BOOLEAN,  -- whether the plan re-diffed every user (not only the changed ones)
    full_at TIMESTAMP,  -- when the last full re-diff was made
    only_user VARCHAR,  -- the one user of an on-demand plan (object id, UPN or mail), else empty
    drift BIGINT  -- properties of linked users whose target value differs from what this pair last wrote
);

-- owner: xts_pipeline.guardrails.verdicts
-- Users a per-user guardrail holds out of the current plan.
CREATE TABLE IF NOT EXISTS plan_exclusions (
    pair_key VARCHAR,  -- sync pair, SOURCE__TARGET
    cycle_id VARCHAR,  -- run id of the plan step that produced the plan
    change_id VARCHAR,  -- the held planned write
    check_name VARCHAR,  -- the guardrail that holds it
    reason VARCHAR  -- why it is held
);

-- owner: xts_pipeline.guardrails.verdicts
-- The guarded plan's report: each guardrail's verdict on one plan.
CREATE TABLE IF NOT EXISTS guardrail_verdicts (
    pair_key VARCHAR,  -- sync pair, SOURCE__TARGET
    cycle_id VARCHAR,  -- run id of the plan step that produced the plan
    fingerprint VARCHAR,  -- fingerprint of the judged plan
    check_name VARCHAR,  -- the guardrail
    passed BOOLEAN,  -- whether the plan passed it (or an approval passed it)
    stops_pair BOOLEAN,  -- whether a failure stops the whole pair (not only some users)
    severity VARCHAR,  -- ERROR or WARN, as the check reports it
    message VARCHAR,  -- what the guardrail found, in one line
    approve_command VARCHAR,  -- the `xts approve` command that passes this exact plan, when one can
    metadata JSON,  -- the guardrail's figures (JSON)
    evaluated_at TIMESTAMP  -- when the verdict was recorded
);

-- owner: xts_pipeline.journal
-- Which target user each pair wrote for each source user, and what it last wrote there.
CREATE TABLE IF NOT EXISTS links (
    pair_key VARCHAR,  -- sync pair, SOURCE__TARGET
    source_tenant_id VARCHAR,  -- tenant id of the source
    source_object_id VARCHAR,  -- object id of the user in the source
    target_tenant VARCHAR,  -- target tenant name
    target_user_id VARCHAR,  -- object id of the linked user in the target
    state VARCHAR,  -- active, pending (written, not yet seen by a snapshot), disabled or deleted
    linked_at TIMESTAMP,  -- when the link was made or last confirmed
    deleted_at TIMESTAMP,  -- when the target user was deleted
    applied JSON,  -- per property, the value this pair last wrote (the three-way diff's base) (JSON)
    PRIMARY KEY (pair_key, source_object_id)
);

-- owner: xts_pipeline.planner
-- Properties of linked users whose target value differs from what this pair last wrote (plan time).
CREATE TABLE IF NOT EXISTS plan_drift (
    pair_key VARCHAR,  -- sync pair, SOURCE__TARGET
    cycle_id VARCHAR,  -- run id of the plan step that found the drift
    source_object_id VARCHAR,  -- object id of the user in the source
    target_user_id VARCHAR,  -- object id of the linked user in the target
    property VARCHAR,  -- the drifted property
    applied JSON,  -- the value this pair last wrote (JSON)
    target JSON,  -- the value the target holds now (JSON)
    repaired BOOLEAN  -- whether the plan writes it back (drift: repair)
);

-- owner: xts_pipeline.journal
-- Writes in flight: a create or restore interrupted mid-call is reconciled from here on the next apply.
CREATE TABLE IF NOT EXISTS write_journal (
    pair_key VARCHAR,  -- sync pair, SOURCE__TARGET
    cycle_id VARCHAR,  -- run id of the plan step that planned the write
    change_id VARCHAR,  -- stable id of one planned write
    op_kind VARCHAR,  -- the planned action being written
    source_object_id VARCHAR,  -- object id of the user in the source
    target_user_id VARCHAR,  -- object id of the user in the target, once known
    mail VARCHAR,  -- mail of the user, to find a create that landed without its answer
    lookup_filter VARCHAR,  -- the $filter that finds the written user by its link extension
    state VARCHAR,  -- in_flight, reconciled, or the write's outcome
    started_at TIMESTAMP,  -- when the write started
    finished_at TIMESTAMP,  -- when its outcome was recorded
    PRIMARY KEY (pair_key, change_id)
);

-- owner: xts_pipeline.provisioning_log
-- The provisioning log, in Entra's words: one row per planned write and its outcome.
CREATE TABLE IF NOT EXISTS provisioning_log (
    cycle_id VARCHAR,  -- run id of the plan step that planned the write
    change_id VARCHAR,  -- stable id of one planned write
    pair_key VARCHAR,  -- sync pair, SOURCE__TARGET
    logged_at TIMESTAMP,  -- when the outcome was logged
    action VARCHAR,  -- Entra's action: Create / Update / Disable / Delete / StagedDelete / Other
    status VARCHAR,  -- outcome, as in Entra provisioning logs: Success / Failure / Skipped / Warning
    operation VARCHAR,  -- the Graph operation performed
    source_tenant_id VARCHAR,  -- tenant id of the source
    source_object_id VARCHAR,  -- object id of the user in the source
    source_upn VARCHAR,  -- userPrincipalName in the source
    target_tenant VARCHAR,  -- target tenant name
    target_user_id VARCHAR,  -- object id of the user in the target
    modified_properties JSON,  -- attributes written (JSON)
    error_code VARCHAR,  -- Graph error code of a failed write
    error_message VARCHAR,  -- Graph error message of a failed write
    duration_ms DOUBLE,  -- duration of the Graph call
    reason VARCHAR,  -- why the write was held or skipped
    hold VARCHAR  -- why a Skipped entry was not written: held (a per-user guardrail) or blocked (the pair)
);

-- owner: xts_pipeline.store
-- Incremental steps: the newest raw_users.updated_at a step has consumed, and what it was computed with.
CREATE TABLE IF NOT EXISTS watermarks (
    name VARCHAR PRIMARY KEY,  -- the step and its partition, e.g. plan:<pair key>
    value TIMESTAMP,  -- the newest input time the step has consumed
    info VARCHAR  -- what the step computed it with (a config hash or a cycle id)
);

-- owner: xts_pipeline.guardrails.approvals
-- Approvals of one exact blocked plan (by fingerprint): who approved it, when, and why.
CREATE TABLE IF NOT EXISTS approvals (
    pair_key VARCHAR,  -- sync pair, SOURCE__TARGET
    fingerprint VARCHAR,  -- fingerprint of the approved plan
    approved_by VARCHAR,  -- who approved it ($XTS_APPROVER or the login name)
    approved_at TIMESTAMP,  -- when it was approved
    reason VARCHAR  -- why the plan is wanted
);

-- owner: xts_pipeline.guardrails.approvals
-- Cycles whose plan ran under an approval: their creates are not counted again by the volume window.
CREATE TABLE IF NOT EXISTS approved_cycles (
    pair_key VARCHAR,  -- sync pair, SOURCE__TARGET
    cycle_id VARCHAR,  -- run id of the plan step whose plan was approved
    fingerprint VARCHAR,  -- fingerprint of the approved plan
    recorded_at TIMESTAMP,  -- when the approved plan was applied
    PRIMARY KEY (pair_key, cycle_id)
);

-- owner: xts_pipeline.extract
-- Verified domains of each tenant (GET /organization), read with its users: adoption and exemptions
-- trust a mail only when its domain is verified by the tenant it comes from.
CREATE TABLE IF NOT EXISTS tenant_domains (
    tenant VARCHAR,  -- tenant name from the topology config
    domain VARCHAR,  -- a verified domain, lower-case
    is_default BOOLEAN,  -- whether it is the tenant's default domain
    read_at TIMESTAMP,  -- when the domains were read
    PRIMARY KEY (tenant, domain)
);

-- owner: xts_pipeline.guardrails.quarantine
-- Entra's quarantine of a failing pair: skipped with back-off, disabled after four weeks. One row per pair.
CREATE TABLE IF NOT EXISTS quarantine (
    pair_key VARCHAR,  -- sync pair, SOURCE__TARGET
    since TIMESTAMP,  -- when the pair was quarantined (the first failure)
    reason VARCHAR,  -- why it was quarantined
    released_at TIMESTAMP,  -- when the quarantine was lifted
    failures BIGINT,  -- failures counted towards the quarantine
    status VARCHAR,  -- quarantined, disabled or released
    next_retry_at TIMESTAMP,  -- when the next back-off retry is due
    attempts INTEGER,  -- retries made since the pair was quarantined
    released_by VARCHAR  -- who lifted it (or automatic: retry succeeded)
);

-- owner: xts_pipeline.guardrails.quarantine
-- Failure counts accrued across applies until a clean apply or a release (Entra's escrows).
CREATE TABLE IF NOT EXISTS quarantine_escrow (
    pair_key VARCHAR PRIMARY KEY,  -- sync pair, SOURCE__TARGET
    events BIGINT,  -- provisioning events counted
    failures BIGINT,  -- failed events counted, reference failures included
    reference_failures BIGINT,  -- of the failures, those of reference writes (manager)
    first_failure_at TIMESTAMP,  -- when the first counted failure happened (retries are measured from it)
    updated_at TIMESTAMP  -- when the counts last changed
);

-- owner: xts_pipeline.lease
-- One cycle per pair (and one extraction per tenant) at a time: see xts_pipeline/lease.py.
CREATE TABLE IF NOT EXISTS leases (
    name VARCHAR PRIMARY KEY,  -- pair:<pair key>, source:<tenant>, target:<tenant> or write:<tenant>
    owner VARCHAR,  -- the cycle (xts/cycle tag) or run id that holds it
    what VARCHAR,  -- what the holder is doing, as shown to people
    host VARCHAR,  -- host of the holding process
    pid INTEGER,  -- pid of the holding process (empty between steps of a run)
    pid_start VARCHAR,  -- start time of that process, so a reused pid is not taken for it
    run_id VARCHAR,  -- Dagster run id of the holder
    acquired_at TIMESTAMP,  -- when the lease was taken
    renewed_at TIMESTAMP,  -- when the heartbeat last renewed it
    expires_at TIMESTAMP  -- when it may be taken over if not renewed
);

-- owner: xts_pipeline.unchanged
-- What a pair's last clean run planned from: a pair whose inputs hash the same is not run again.
CREATE TABLE IF NOT EXISTS pair_inputs (
    pair_key VARCHAR PRIMARY KEY,  -- sync pair, SOURCE__TARGET
    versions VARCHAR,  -- the source's staging and the target's snapshot the pair's run started from
    fingerprint VARCHAR,  -- hash of everything the plan depends on, set when the run ended clean
    run_id VARCHAR,  -- the Dagster run that recorded it
    cycle_id VARCHAR,  -- the cycle of that run
    recorded_at TIMESTAMP  -- when it was recorded
);
