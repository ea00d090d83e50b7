"""The seed's output is pinned: the same seed must give the same tenants, byte for byte.

Test fixtures, benches and recorded demo runs name seeded users by id and attribute, so a change to the
generator or its data that moves one draw would silently give every one of them other people. A
deliberate change to the generated tenants updates these digests in the same commit.
"""

from __future__ import annotations

import hashlib

import orjson
import pytest

from xts_pipeline.sandbox.seed import TenantSeed, demo_seed, generate_tenant

_META = ("name", "tenant_id", "domain", "display_name", "client_id", "client_secret", "app_object_id",
         "permissions", "user_count", "seed")


def digest(t: TenantSeed) -> str:
    """sha256 over everything a tenant seed hands the store, in order."""
    h = hashlib.sha256(orjson.dumps({k: getattr(t, k) for k in _META}))
    for u in t.users:
        h.update(orjson.dumps(u))
    for part in (t.groups, t.members, t.directory_roles, t.role_members):
        h.update(orjson.dumps(part))
    return h.hexdigest()


def test_demo_seed_is_pinned():
    seed = demo_seed()
    assert {t.name: digest(t) for t in seed.tenants} == {
        "contoso": "d7945406736426be18063e4064b5f04cf942aedf7e701c26c041df09c45965b4",
        "fabrikam": "f7fb41b761715b3f5d3a66f415d43a32df5d5a374a0f729f1b3f2b9335fd8ebc",
        "northwind": "bfde5561e6478b34bfcd219d162a8ec42f11863f3706abc70bfa60d5be225982",
    }
    assert hashlib.sha256(repr(seed.partner_policies).encode()).hexdigest() == \
        "389d505d8aba1b1569091ff527649d042816ebbaea1632f8f1560709b3c7956a"


@pytest.mark.parametrize(("users", "expected"), [
    (5000, "9d0cca7e50503055b0f04f30e4864ec2f5565bb5c8eda3259a4219ccae9c1d58"),
])
def test_generated_tenant_is_pinned(users, expected):
    """The bench's tenant (bench/sandbox_bench.py: `generate_tenant("bench", n, seed=1)`) at a test size."""
    assert digest(generate_tenant("bench", users, seed=1)) == expected
