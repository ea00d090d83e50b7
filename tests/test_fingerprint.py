"""The plan fingerprint in fingerprint.py (vocabulary.plan_fingerprint) is the digest approvals.py computed.

The reference below is the former guardrails/approvals.py implementation, copied verbatim with its JSON
column readers (the former guardrails/rows.py `_json`, `changes`, `desired`), so a stored approval or
plan_meta fingerprint written before the move still matches the same plan after it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xts_pipeline import fingerprint, vocabulary
from xts_pipeline.guardrails import rows


def _json(value: Any, default: Any) -> Any:
    if value is None:
        return default
    if isinstance(value, str | bytes):
        return orjson.loads(value) if value else default
    return value


def _old_canonical_row(row: Mapping[str, Any]) -> bytes:
    content = {k: row.get(k) for k in ("pair_key", "action", "source_tenant_id", "source_object_id",
                                       "target_user_id")}
    changes = _json(row.get("changes"), []) or []
    content["changes"] = sorted(changes, key=lambda c: orjson.dumps(c, option=orjson.OPT_SORT_KEYS))
    content["desired"] = _json(row.get("desired"), {}) or {}
    return orjson.dumps(content, option=orjson.OPT_SORT_KEYS, default=str)


def old_plan_fingerprint(plan_rows: Iterable[Mapping[str, Any]]) -> str:
    digests = sorted(hashlib.sha256(_old_canonical_row(r)).digest() for r in plan_rows
                     if r.get("action") != "skip")
    total = hashlib.sha256(len(digests).to_bytes(8, "big"))
    for d in digests:
        total.update(d)
    return total.hexdigest()[:32]


_VALUE = st.recursive(st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.text(max_size=6),
                      lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                                   max_size=3), max_leaves=6)
_CHANGES = st.lists(st.fixed_dictionaries({"property": st.text(max_size=5), "old": _VALUE, "new": _VALUE}),
                    max_size=4)
_DESIRED = st.dictionaries(st.text(max_size=5), _VALUE, max_size=4)


def _as_column(strategy: st.SearchStrategy) -> st.SearchStrategy:
    """A JSON column as a row may carry it: decoded, DuckDB's text, bytes, NULL, '' or JSON null."""
    return st.one_of(strategy, strategy.map(json.dumps), strategy.map(lambda v: orjson.dumps(v)),
                     st.none(), st.just(""), st.just("null"))


_ROW = st.fixed_dictionaries({
    "pair_key": st.sampled_from(["a__b", "b__a"]),
    "cycle_id": st.text(max_size=4),
    "change_id": st.text(max_size=4),
    "action": st.sampled_from(vocabulary.ACTIONS),
    "source_tenant_id": st.one_of(st.none(), st.text(max_size=6)),
    "source_object_id": st.one_of(st.none(), st.text(max_size=8)),
    "target_user_id": st.one_of(st.none(), st.text(max_size=8), st.integers(-2**40, 2**40)),
    "changes": _as_column(_CHANGES),
    "desired": _as_column(_DESIRED),
})


@pytest.mark.slow  # 300 random plans: ~3.5 s, in make test-all (the fixed digest below stays in make test)
@settings(max_examples=300, deadline=None)
@given(st.lists(_ROW, max_size=8))
def test_fingerprint_is_the_former_approvals_digest(plan: list[dict[str, Any]]) -> None:
    expected = old_plan_fingerprint(plan)
    assert vocabulary.plan_fingerprint(plan) == expected
    assert fingerprint.plan_fingerprint(iter(plan)) == expected
    assert vocabulary.is_fingerprint(expected)
    for r in plan:
        assert fingerprint.canonical_row(r) == _old_canonical_row(r)
        assert rows.changes(r) == (_json(r.get("changes"), []) or [])
        assert rows.desired(r) == (_json(r.get("desired"), {}) or {})


def test_a_known_plan_keeps_its_digest() -> None:
    """A fixed plan's digest, computed before the move: a change of encoding shows as a changed constant."""
    plan = [{"pair_key": "contoso__fabrikam", "action": "create", "source_tenant_id": "tid",
             "source_object_id": "s1", "target_user_id": None,
             "changes": [{"property": "displayName", "old": None, "new": "User 1"}],
             "desired": {"displayName": "User 1"}},
            {"pair_key": "contoso__fabrikam", "action": "skip", "source_object_id": "s2"}]
    assert vocabulary.plan_fingerprint(plan) == old_plan_fingerprint(plan) == KNOWN_DIGEST


KNOWN_DIGEST = "bd3a85dcda1564dcd36991f1cdfb1b03"
