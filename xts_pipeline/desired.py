"""Desired state of one pair: scoping and attribute mappings applied to the source's staged users.

Scoping and expressions are Python evaluators, so this step is a row loop over Arrow batches; the
plan that follows is pure SQL. A user whose mapping fails is recorded in `desired_errors` and left
untouched in the target (never deprovisioned because of our own error).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from xts_pipeline import queries, store
from xts_pipeline.mappings import flatten_extension_attributes
from xts_pipeline.scoping import compile_filters, is_internal_member

BATCH = 20_000
# Used only when a pair carries no compiled mappings: Entra's usual attributes, copied directly.
FALLBACK_ATTRIBUTES = ("displayName", "givenName", "surname", "jobTitle", "department", "companyName",
                       "accountEnabled")


@dataclass
class DesiredResult:
    """Counts of one pair's desired-state step."""

    pair_key: str
    mode: str = "full"  # "full" | "incremental"
    source_users: int = 0
    in_scope: int = 0
    not_internal: int = 0
    out_of_scope: int = 0
    not_assigned: int = 0
    mapping_errors: int = 0
    sample_errors: list[dict] = field(default_factory=list)


def _mapper(pair: Any) -> Callable[[dict, bool], dict]:
    mappings = getattr(pair, "mappings", None)
    if mappings is not None and hasattr(mappings, "apply"):
        return mappings.apply
    return lambda user, is_create: {k: user.get(k) for k in FALLBACK_ATTRIBUTES if k in user}


def assigned_ids(con, tenant: str, groups: Iterable[str]) -> set[str] | None:
    """Direct members of the pair's assigned groups (None: no assignment, every member counts)."""
    refs = list(groups)
    if not refs:
        return None
    rows = con.execute(queries.load("desired/assigned_members"), [tenant, refs]).fetchall()
    return {r[0] for r in rows}


def desired_for_user(pair: Any, user: dict, mapper: Callable[[dict, bool], dict],
                     both: Callable[[dict], tuple[dict, dict]] | None = None) -> tuple[dict, dict]:
    """(attributes on create, attributes on update) for one in-scope user.

    Without compiled mappings (tests, minimal pairs) userType and showInAddressList come from the pair's
    settings: userType on create only, as Entra's default mapping does ("If the B2B user already exists in
    the target tenant then Member (userType) will not changed to Member, unless the Apply this mapping
    setting is set to Always", cross-tenant-synchronization-configure.md).
    """
    if both is not None:  # the compiled mappings' one-pass apply_both: the same two dicts
        create, update = (dict(d) for d in both(user))
    else:
        create = dict(mapper(user, True))
        update = dict(mapper(user, False))
    has_mappings = hasattr(getattr(pair, "mappings", None), "apply")
    for attrs, is_create in ((create, True), (update, False)):
        if not has_mappings:
            if is_create:
                attrs.setdefault("userType", _user_type_value(getattr(pair, "user_type", "Member")))
            attrs.setdefault("showInAddressList", getattr(pair, "show_in_address_list", True))
        if "accountEnabled" not in attrs and user.get("accountEnabled") is not None:
            attrs["accountEnabled"] = user.get("accountEnabled")
        if is_create and "mail" in attrs and not attrs["mail"]:
            # No source mail: the invitation went to the UPN, which Graph then shows as the guest's mail.
            attrs["mail"] = user.get("userPrincipalName")
    return create, update


def _user_type_value(setting: Any) -> str:
    return str(getattr(setting, "value", setting) or "Member")


def _config_hash(pair: Any, assigned: set[str] | None) -> str:
    """What the desired state depends on besides the users: the pair's settings and assigned members."""
    settings = getattr(pair, "settings", None)
    text = settings.model_dump_json() if hasattr(settings, "model_dump_json") else repr(pair)
    members = "*" if assigned is None else ",".join(sorted(assigned))
    return hashlib.sha256(f"{text}|{members}".encode()).hexdigest()


def compute_desired(db: str | Path | None, pair: Any, source_tenant_id: str, incremental: bool = True) -> DesiredResult:
    """Replace `desired_users` of `pair` from `staged_users` of its source.

    Incremental when the pair's settings and assigned members are unchanged since the last run: only
    users whose raw row changed are re-evaluated; users gone from staging leave desired_users.
    """
    res = DesiredResult(pair_key=pair.key)
    filters = getattr(pair, "filters", None) or []
    scope = getattr(pair, "scope", None)
    matches = compile_filters(filters, loop_guard=False, path=f"pair {pair.name} scope.filters")
    mapper = _mapper(pair)
    both = getattr(getattr(pair, "mappings", None), "apply_both", None)
    wm_name = f"desired:{pair.key}"
    with store.connect(db) as con:
        assigned = assigned_ids(con, pair.source, getattr(scope, "groups", []) or [])
        chash = _config_hash(pair, assigned)
        wm = store.get_watermark(con, wm_name) if incremental else None
        since = wm[0] if wm and wm[1] == chash else None
        high = con.execute(queries.load("desired/high_water"), [pair.source]).fetchall()[0][0]
        staged = con.sql(queries.load("desired/staged_since"),
                         params={"t": pair.source, "since": since}).to_arrow_table()
    res.mode = "incremental" if since is not None else "full"
    out: dict[str, list] = {k: [] for k in ("sid", "upn", "mail", "dn", "en", "dc", "du")}
    errors: list[tuple[str, str | None, str]] = []
    for batch in staged.to_batches(BATCH):
        for sid, attrs in zip(batch.column("id").to_pylist(), batch.column("attrs").to_pylist(), strict=True):
            res.source_users += 1
            user = flatten_extension_attributes(orjson.loads(attrs))
            if not is_internal_member(user):
                res.not_internal += 1
                continue
            if assigned is not None and sid not in assigned:
                res.not_assigned += 1
                continue
            if not matches(user):
                res.out_of_scope += 1
                continue
            try:
                create, update = desired_for_user(pair, user, mapper, both)
            except Exception as exc:  # noqa: BLE001 - any evaluator error is recorded per user
                errors.append((sid, user.get("userPrincipalName"), f"{type(exc).__name__}: {exc}"))
                continue
            res.in_scope += 1
            out["sid"].append(sid)
            out["upn"].append(user.get("userPrincipalName"))
            out["mail"].append(user.get("mail"))
            out["dn"].append(user.get("displayName"))
            en = update.get("accountEnabled", user.get("accountEnabled"))
            out["en"].append(None if en is None else bool(en))
            out["dc"].append(orjson.dumps(create).decode())
            out["du"].append(orjson.dumps(update).decode())
    res.mapping_errors = len(errors)
    res.sample_errors = [{"source_object_id": s, "userPrincipalName": u, "error": e} for s, u, e in errors[:20]]
    table = pa.table({k: pa.array(v, type=pa.bool_() if k == "en" else pa.string()) for k, v in out.items()})
    with store.connect(db) as con:
        con.execute("BEGIN")
        if since is None:
            for statement in queries.statements("desired/clear"):
                con.execute(statement, [pair.key])
        else:
            changed = {"pair": pair.key, "changed": staged.column("id").to_pylist()}
            con.execute(queries.load("desired/drop_changed"), changed)
            con.execute(queries.load("desired/drop_changed_errors"), changed)
            con.execute(queries.load("desired/drop_unstaged"), {"pair": pair.key, "source": pair.source})
        con.register("desired_tbl", table)
        con.execute(queries.load("desired/insert"), {"pair": pair.key, "source_tid": source_tenant_id})
        if high is not None:
            store.set_watermark(con, wm_name, high, chash)
        con.unregister("desired_tbl")
        if errors:
            con.executemany(queries.load("desired/error"), [[pair.key, *e] for e in errors])
        con.execute("COMMIT")
    return res
