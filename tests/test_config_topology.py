"""Topology expansion: mesh, hub outbound/inbound, ad hoc pairs, merging and overrides."""

from __future__ import annotations

import itertools
import textwrap
import uuid
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from xts_pipeline.config import (
    ConfigError,
    Topology,
    default_config_path,
    load_config,
    resolve_config_path,
)
from xts_pipeline.config.loader import topology_from_source
from xts_pipeline.config.yaml_source import parse_yaml

NAMES = ["contoso", "fabrikam", "northwind", "litware", "adatum", "woodgrove", "tailspin", "wingtip"]


def tenant(name: str) -> dict:
    ids = [str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}.{k}")) for k in ("tenant", "client", "app")]
    return {
        "tenant_id": ids[0],
        "domain": f"{name}.onmicrosoft.com",
        "client_id": ids[1],
        "app_object_id": ids[2],
        "credential": {"env": f"XTS_SECRET_{name.upper()}"},
    }


def build(doc: dict) -> Topology:
    """Load a topology from a dict through the real YAML + validation path."""
    doc = {"tenants": {n: tenant(n) for n in NAMES}, "sync_defaults": {"scope": {"all_members": True}}, **doc}
    return topology_from_source(parse_yaml(yaml.safe_dump(doc, sort_keys=False), "test.yaml"), Path.cwd())


def names(topo: Topology) -> list[str]:
    return [p.name for p in topo.pairs()]


def test_mesh_of_n_gives_n_times_n_minus_1_pairs() -> None:
    for n in (2, 3, 5):
        topo = build({"topology": [{"mesh": NAMES[:n]}]})
        assert len(topo.pairs()) == n * (n - 1)
        assert set(names(topo)) == {f"{a}->{b}" for a, b in itertools.permutations(NAMES[:n], 2)}


def test_hub_outbound_and_inbound_directions() -> None:
    topo = build({"topology": [
        {"hub_outbound": {"hub": "contoso", "spokes": ["fabrikam", "northwind"]}},
        {"hub_inbound": {"hub": "litware", "spokes": ["adatum", "wingtip"]}},
    ]})
    assert names(topo) == ["contoso->fabrikam", "contoso->northwind", "adatum->litware", "wingtip->litware"]
    pair = topo.pair("adatum->litware")
    assert (pair.source, pair.target, pair.key) == ("adatum", "litware", "adatum__litware")
    assert topo.pair("contoso__fabrikam").name == "contoso->fabrikam"


def test_pair_lookup_suggests_close_names() -> None:
    topo = build({"topology": [{"pair": {"source": "contoso", "target": "fabrikam"}}]})
    with pytest.raises(ConfigError, match="Did you mean 'contoso->fabrikam'"):
        topo.pair("contoso->fabrikan")


def test_defaults_are_entra_defaults() -> None:
    pair = build({"topology": [{"pair": {"source": "contoso", "target": "fabrikam"}}]}).pairs()[0]
    assert pair.enabled is True
    assert pair.user_type == "Member"
    assert pair.show_in_address_list is True
    assert pair.deprovision_action == "delete"
    assert (pair.target_object_actions.create, pair.target_object_actions.update,
            pair.target_object_actions.delete) == (True, True, True)
    assert pair.mapping_specs, "Entra's default mappings are present without any override"


def test_block_settings_and_overrides_deep_merge() -> None:
    topo = build({
        "sync_defaults": {"scope": {"all_members": True}, "show_in_address_list": False},
        "topology": [
            {"hub_outbound": {"hub": "contoso", "spokes": ["fabrikam", "northwind"]},
             "user_type": "Guest",
             "scope": {"filters": [{"clauses": [{"attribute": "department", "operator": "EQUALS", "value": "Sales"}]}]}},
        ],
        "sync": [
            {"source": "contoso", "target": "northwind", "deprovision": {"action": "disable"},
             "scope": {"all_members": False, "groups": ["XTS Sync – Northwind"]}},
        ],
    })
    fab, nw = topo.pair("contoso->fabrikam"), topo.pair("contoso->northwind")
    assert fab.user_type == nw.user_type == "Guest"
    assert fab.show_in_address_list is False and nw.show_in_address_list is False
    assert fab.deprovision_action == "delete" and nw.deprovision_action == "disable"
    assert fab.scope.all_members and not nw.scope.all_members
    assert nw.scope.groups == ["XTS Sync – Northwind"]
    # the override added groups but kept the block's filters
    assert nw.filters == fab.filters == [
        {"title": None, "clauses": [{"attribute": "department", "operator": "EQUALS", "value": "Sales"}]}
    ]
    assert nw.declared_in == ("topology[0]", "sync[0]")


def test_mappings_merge_by_target_across_levels() -> None:
    topo = build({
        "sync_defaults": {"scope": {"all_members": True},
                          "mappings": [{"target": "companyName", "type": "Constant", "value": "Contoso"}]},
        "topology": [{"mesh": ["contoso", "fabrikam"]}],
        "sync": [{"source": "fabrikam", "target": "contoso",
                  "mappings": [{"target": "companyName", "type": "Constant", "value": "Fabrikam"}]}],
    })
    from xts_pipeline.mappings import Mapping

    def company(pair_name: str) -> list:
        return [m for m in topo.pair(pair_name).mapping_specs if isinstance(m, Mapping) and m.target == "companyName"]

    assert [m.value for m in company("contoso->fabrikam")] == ["Contoso"]
    assert [m.value for m in company("fabrikam->contoso")] == ["Fabrikam"]


def test_overlapping_blocks_that_agree_merge_into_one_pair() -> None:
    topo = build({"topology": [
        {"mesh": ["contoso", "fabrikam", "northwind"]},
        {"hub_outbound": {"hub": "contoso", "spokes": ["fabrikam"]}, "user_type": "Guest"},
        {"pair": {"source": "contoso", "target": "fabrikam"}, "show_in_address_list": False},
    ]})
    assert len(topo.pairs()) == 6
    pair = topo.pair("contoso->fabrikam")
    assert pair.user_type == "Guest" and pair.show_in_address_list is False
    assert pair.declared_in == ("topology[0]", "topology[1]", "topology[2]")


def test_disabled_pair_needs_no_scope_and_grants_no_permissions() -> None:
    topo = build({"sync_defaults": {"enabled": False},
                  "topology": [{"pair": {"source": "contoso", "target": "fabrikam"}}]})
    assert topo.pairs()[0].enabled is False
    assert topo.required_permissions("contoso") == []


def test_required_permissions_follow_roles() -> None:
    topo = build({"topology": [
        {"pair": {"source": "contoso", "target": "fabrikam"}},
        {"pair": {"source": "northwind", "target": "contoso"},
         "scope": {"all_members": False, "groups": ["Sync"]}},
    ]})
    assert topo.required_permissions("fabrikam") == [
        "Application.ReadWrite.OwnedBy", "GroupMember.Read.All", "Policy.Read.All", "User.Invite.All",
        "User.ReadWrite.All",
    ]
    assert topo.required_permissions("northwind") == ["GroupMember.Read.All", "Organization.Read.All",
                                                      "User.Read.All"]
    assert "User.Read.All" in topo.required_permissions("contoso")
    assert "User.Invite.All" in topo.required_permissions("contoso")
    assert topo.required_permissions("litware") == []
    with pytest.raises(ConfigError, match="unknown tenant 'contosso'. Did you mean 'contoso'"):
        topo.required_permissions("contosso")


def test_optional_permissions_are_listed_apart_from_required_ones() -> None:
    topo = build({"topology": [
        {"pair": {"source": "contoso", "target": "fabrikam"}},
        {"pair": {"source": "northwind", "target": "contoso"},
         "scope": {"all_members": False, "groups": ["Sync"]}},
    ]})
    # Reading directory-role holders only strengthens impersonation: targets get it as optional.
    assert topo.optional_permissions("fabrikam") == ["RoleManagement.Read.Directory"]
    assert "RoleManagement.Read.Directory" not in topo.required_permissions("fabrikam")
    assert topo.optional_permissions("northwind") == []  # a source only
    needs = topo.permission_needs("contoso")  # source and target
    assert [n.permission for n in needs if n.required] == topo.required_permissions("contoso")
    assert [n.permission for n in needs[-1:]] == ["RoleManagement.Read.Directory"] and not needs[-1].required
    assert "impersonation" in needs[-1].why and needs[-1].roles == ("target",)
    assert len({n.permission for n in needs}) == len(needs)
    # contoso is not scoped by groups as a source, so GroupMember.Read.All is there once, for the target.
    group = next(n for n in needs if n.permission == "GroupMember.Read.All")
    assert group.required and group.roles == ("target",)
    both = next(n for n in topo.permission_needs("northwind") if n.permission == "GroupMember.Read.All")
    assert both.roles == ("source",) and "scope.groups" in both.why
    from xts_pipeline.config import permission_needs

    merged = next(n for n in permission_needs({"source", "target"}, uses_assigned_groups=True)
                  if n.permission == "GroupMember.Read.All")
    assert merged.required and merged.roles == ("source", "target") and "scope.groups" in merged.why


def test_inbound_policy_default_and_configured() -> None:
    topo = build({"topology": [{"mesh": ["contoso", "fabrikam"]}],
                  "inbound_policies": {"contoso": {"allowed_sources": ["fabrikam"]}}})
    assert topo.inbound_policy("contoso").allowed_sources == ["fabrikam"]
    assert topo.inbound_policy("fabrikam") == type(topo.inbound_policy("contoso"))()


def test_inbound_policy_unknown_key_is_an_error() -> None:
    with pytest.raises(ConfigError) as info:
        build({"topology": [{"mesh": ["contoso", "fabrikam"]}],
               "inbound_policies": {"contoso": {"allowed_source": ["fabrikam"]}}})
    assert "inbound_policies.contoso.allowed_source: unknown key" in str(info.value)


def test_schedule_staging_storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = textwrap.dedent("""\
        schedule: {interval_minutes: 15, cron: "*/15 * * * *"}
        staging: {max_reject_fraction: 0.1}
        storage: {duckdb_path: data/xts.duckdb}
        """)
    doc = yaml.safe_load(text)
    doc.update({"tenants": {n: tenant(n) for n in NAMES[:2]}, "topology": [{"mesh": NAMES[:2]}],
                "sync_defaults": {"scope": {"all_members": True}}})
    path = tmp_path / "topo.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    topo = load_config(path)
    assert topo.schedule.interval_minutes == 15 and topo.schedule.cron == "*/15 * * * *"
    assert topo.staging.max_reject_fraction == 0.1
    assert topo.duckdb_path == tmp_path.resolve() / "data" / "xts.duckdb"

    del doc["storage"]
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    monkeypatch.delenv("XTS_HOME", raising=False)
    assert load_config(path).duckdb_path == tmp_path / "xts.duckdb"
    monkeypatch.setenv("XTS_HOME", str(tmp_path / "home"))
    assert load_config(path).duckdb_path == tmp_path / "home" / "xts.duckdb"


def test_bad_cron_is_explained() -> None:
    with pytest.raises(ConfigError, match=r"schedule.cron: cron must have 5 fields"):
        build({"topology": [{"mesh": NAMES[:2]}], "schedule": {"cron": "every 40 minutes"}})


def test_demo_topology_loads_and_uses_the_vocabulary() -> None:
    topo = load_config(default_config_path())
    assert set(topo.tenants) == {"contoso", "fabrikam", "northwind"}
    assert {b.kind for b in topo.topology} == {"hub_outbound", "hub_inbound", "pair"}
    pairs = {p.name: p for p in topo.pairs()}
    assert set(pairs) == {"contoso->fabrikam", "contoso->northwind", "fabrikam->contoso",
                          "northwind->contoso", "fabrikam->northwind"}
    assert pairs["contoso->fabrikam"].scope.groups == ["XTS Sync – Fabrikam"]
    assert pairs["fabrikam->northwind"].user_type == "Guest"
    for name in topo.tenants:
        assert topo.inbound_policy(name).allowed_sources
        assert topo.tenants[name].credential.env == f"XTS_SECRET_{name.upper()}"


def test_resolve_config_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cli = tmp_path / "cli.yaml"
    env = tmp_path / "env.yaml"
    cli.write_text("{}")
    env.write_text("{}")
    monkeypatch.setenv("XTS_CONFIG", str(env))
    assert resolve_config_path(str(cli)) == cli
    assert resolve_config_path(None) == env
    monkeypatch.delenv("XTS_CONFIG")
    assert resolve_config_path(None, fallback_to_demo=True) == default_config_path()
    with pytest.raises(ConfigError, match="pass --config PATH or set XTS_CONFIG"):
        resolve_config_path(None)
    with pytest.raises(ConfigError, match=r"missing.yaml: file not found \(from --config\)"):
        resolve_config_path(str(tmp_path / "missing.yaml"))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(NAMES), min_size=2, max_size=len(NAMES), unique=True),
       st.lists(st.sampled_from(NAMES), min_size=2, max_size=4, unique=True))
def test_mesh_expansion_has_no_self_pairs_and_no_duplicates(members: list[str], other: list[str]) -> None:
    topo = build({"topology": [{"mesh": members}, {"mesh": other}]})
    pairs = [(p.source, p.target) for p in topo.pairs()]
    assert all(s != t for s, t in pairs)
    assert len(pairs) == len(set(pairs))
    expected = set(itertools.permutations(members, 2)) | set(itertools.permutations(other, 2))
    assert set(pairs) == expected
    assert all(p.key == f"{p.source}__{p.target}" for p in topo.pairs())


def test_user_type_and_address_list_become_entra_constant_mappings() -> None:
    topo = build({"topology": [{"pair": {"source": "contoso", "target": "fabrikam"},
                                "user_type": "Guest", "show_in_address_list": False}]})
    specs = {m.target: m for m in topo.pairs()[0].mapping_specs}
    assert (specs["userType"].type, specs["userType"].value) == ("Constant", "Guest")
    assert (specs["showInAddressList"].type, specs["showInAddressList"].value) == ("Constant", "False")
    default = build({"topology": [{"pair": {"source": "contoso", "target": "fabrikam"}}]}).pairs()[0]
    assert {m.target: m.value for m in default.mapping_specs}["userType"] == "Member"


def test_user_type_is_create_only_unless_apply_always() -> None:
    """"If the B2B user already exists in the target tenant then Member (userType) will not changed to Member,
    unless the Apply this mapping setting is set to Always." (cross-tenant-synchronization-configure.md)"""
    plain = build({"topology": [{"pair": {"source": "contoso", "target": "fabrikam"}}]}).pairs()[0]
    assert plain.mappings.apply({"id": "u"}, is_create=True)["userType"] == "Member"
    assert "userType" not in plain.mappings.apply({"id": "u"}, is_create=False)
    always = build({"topology": [{"pair": {"source": "contoso", "target": "fabrikam"},
                                  "user_type": {"value": "Member", "apply": "Always"}}]}).pairs()[0]
    assert always.user_type == "Member"
    assert always.mappings.apply({"id": "u"}, is_create=False)["userType"] == "Member"


def test_drift_setting_defaults_to_report() -> None:
    pair = build({"topology": [{"pair": {"source": "contoso", "target": "fabrikam"}}]}).pairs()[0]
    assert pair.drift == "report"
    repair = build({"topology": [{"pair": {"source": "contoso", "target": "fabrikam"}, "drift": "repair"}]})
    assert repair.pairs()[0].drift == "repair"


def test_compiled_mappings_evaluate_an_override() -> None:
    topo = build({"topology": [{"pair": {"source": "contoso", "target": "fabrikam"},
                                "mappings": [{"target": "companyName", "type": "Expression",
                                              "expression": 'Coalesce([companyName], "Contoso Ltd.")'}]}]})
    compiled = topo.pairs()[0].mappings
    assert "companyName" in compiled.targets


def test_packaged_demo_uses_the_store_default_for_duckdb(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("XTS_HOME", raising=False)
    monkeypatch.setenv("XTS_DUCKDB", str(tmp_path / "demo.duckdb"))
    assert load_config(default_config_path()).duckdb_path == tmp_path / "demo.duckdb"
