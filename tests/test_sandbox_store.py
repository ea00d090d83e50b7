"""SandboxStore invariants (change sequence for delta, soft delete/restore/purge) and token integrity."""

from __future__ import annotations

import functools
import tempfile
import types
import uuid
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from xts_pipeline.sandbox.app import SandboxApp
from xts_pipeline.sandbox.clock import SandboxClock
from xts_pipeline.sandbox.store import ACTIVE, DELETED, PURGED, RETENTION_S, SandboxStore
from xts_pipeline.sandbox.tokens import TokenSigner


def tiny_seed(n: int = 5):
    tid = str(uuid.uuid4())
    users = [{"id": f"u{i:03d}", "userPrincipalName": f"u{i}@t.example", "displayName": f"User {i}",
              "mail": f"u{i}@t.example", "_managerId": "u000" if i else None} for i in range(n)]
    return types.SimpleNamespace(tenant_id=tid, name="t", domain="t.example", client_id=str(uuid.uuid4()),
                                 client_secret="s", app_object_id=str(uuid.uuid4()), permissions=["User.Read.All"],
                                 users=users, groups=[], members=[])


ops = st.lists(st.tuples(st.sampled_from(["create", "update", "delete", "restore", "purge", "mark"]),
                         st.integers(0, 9)), max_size=40)


@settings(max_examples=60, deadline=None)
@given(ops)
def test_changes_since_a_mark_are_exactly_the_touched_users(sequence):
    with tempfile.TemporaryDirectory() as d:
        store = SandboxStore(Path(d))
        t = store.add_tenant(tiny_seed())
        now = 1_000_000.0
        mark, touched = t.seq, set()
        for op, k in sequence:
            uid = f"u{k:03d}"
            before = t.seq
            if op == "create":
                if store.get_user_row(t, uid, states=(ACTIVE, DELETED, PURGED)) is None:
                    store.create_user(t, {"id": uid, "userPrincipalName": f"{uid}@t.example"})
            elif op == "update":
                store.update_user(t, uid, {"jobTitle": str(k)})
            elif op == "delete":
                store.soft_delete(t, uid, "2024-01-01T00:00:00Z", now)
            elif op == "restore":
                store.restore(t, uid)
            elif op == "purge":
                now += RETENTION_S + 1
                store.purge_expired(t, now)
            else:
                mark, touched = t.seq, set()
            assert t.seq >= before  # never goes backwards
            if t.seq > before:
                touched |= {r[1] for r in store.changes_since(t, before, 1000)}
        changed = store.changes_since(t, mark, 10_000)
        seqs = [r[0] for r in changed]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        assert {r[1] for r in changed} == touched
        active = store.db.execute("SELECT count(*) FROM users WHERE tenant_id=? AND state=0",
                                  (t.tenant_id,)).fetchone()[0]
        assert t.user_count == active
        store.close()


def test_store_survives_reopen_with_seq_and_manager(tmp_path):
    store = SandboxStore(tmp_path)
    t = store.add_tenant(tiny_seed(3))
    store.update_user(t, "u002", {"city": "Malmö"})
    seq = t.seq
    store.close()
    again = SandboxStore(tmp_path)
    t2 = again.find_tenant("t.example")
    assert t2.seq == seq and again.get_user(t2, "U2@T.EXAMPLE")["city"] == "Malmö"
    assert again.manager_of(t2, "u002")["id"] == "u000"
    again.close()


@functools.cache
def _app() -> SandboxApp:
    d = Path(tempfile.mkdtemp())
    return SandboxApp(SandboxStore(d), SandboxClock(), TokenSigner(d), admin_key="k")


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(max_size=5), st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5), max_size=4),
       st.integers(0, 200), st.integers(1, 127))
def test_paging_tokens_round_trip_and_reject_tampering(state, pos, flip):
    app = _app()
    token = app.encode_token(state)
    assert app.decode_token(token) == state
    raw = bytearray(token.encode())
    i = pos % len(raw)
    raw[i] ^= flip
    tampered = raw.decode("latin-1")
    if tampered != token:
        assert app.decode_token(tampered) in (None, state)  # unused base64 padding bits may be ignored
