"""Typical mistakes in a topology file: each error names the file, the path, the line, and the fix."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xts_pipeline.config import ConfigError, load_config

BASE = """\
tenants:
  contoso:
    tenant_id: 9c5d131d-b1c3-4fc4-9e3f-c6557947d551
    domain: contoso.onmicrosoft.com
    client_id: 3fa85f64-5717-4562-b3fc-2c963f66afa6
    app_object_id: 5b0e3e2a-4d9a-4c55-9d5c-6a1c3b8e2f01
    credential: {env: XTS_SECRET_CONTOSO}
  fabrikam:
    tenant_id: 0e2d1c3b-7a65-4f8e-9d0c-1b2a3c4d5e6f
    domain: fabrikam.onmicrosoft.com
    client_id: 6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9d
    app_object_id: 1d2e3f4a-5b6c-4d7e-8f9a-0b1c2d3e4f5a
    credential: {file: fabrikam.secret}
  northwind:
    tenant_id: 7f8e9d0c-1b2a-4c3d-8e4f-5a6b7c8d9e0f
    domain: northwind.onmicrosoft.com
    client_id: 2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f
    app_object_id: 8e9f0a1b-2c3d-4e5f-8a6b-7c8d9e0f1a2b
    credential: {env: XTS_SECRET_NORTHWIND}
sync_defaults:
  scope: {all_members: true}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "topology.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> ConfigError:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    err = info.value
    assert str(path) in str(err), "the message must name the file"
    return err


def line_of(text: str, needle: str) -> int:
    """1-based line of the first line containing `needle`."""
    for n, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return n
    raise AssertionError(needle)


MESH = "topology:\n  - mesh: [contoso, fabrikam]\n"

# (topology text, text on the offending line, what the message must say); each error names the line too.
AT_LINE = {
    "typo_in_block_setting": (
        BASE + MESH + "    user_typ: Guest\n", "user_typ",
        ["topology[0].user_typ: unknown key 'user_typ'. Did you mean 'user_type'?"]),
    "unknown_tenant_in_mesh_lists_known_ones": (
        BASE + "topology:\n  - mesh: [contoso, fabrikm, northwind]\n", "fabrikm",
        ["topology[0].mesh[1]: unknown tenant 'fabrikm'. Did you mean 'fabrikam'?", "contoso, fabrikam, northwind"]),
    "bad_guid": (
        BASE.replace("tenant_id: 9c5d131d-b1c3-4fc4-9e3f-c6557947d551", "tenant_id: contoso-tenant") + MESH,
        "contoso-tenant",
        ["tenants.contoso.tenant_id: tenant_id 'contoso-tenant' is not a GUID", "Entra admin center"]),
    "bad_user_type": (
        BASE + MESH + "    user_type: member\n", "user_type",
        ["topology[0].user_type: must be 'Member' or 'Guest'"]),
    "self_pair": (
        BASE + "topology:\n  - pair: {source: contoso, target: contoso}\n", "pair:",
        ["topology[0].pair.target", "syncs a tenant to itself"]),
    "mapping_for_user_type_points_to_the_setting": (
        BASE + MESH + "    mappings:\n      - {target: userType, type: Constant, value: Guest}\n", "userType",
        ["topology[0].mappings[0].target", "`user_type:` sync setting"]),
    # Entra: "The appRoleAssignments, userType, manager, and date-type attributes (for example,
    # StatusHireDate, startDate, endDate, StatusTerminationDate, accountExpires) aren't supported as
    # scoping filters." (app-provisioning/known-issues.md)
    "scoping_on_user_type_refused": (
        BASE + MESH + "    scope:\n      filters:\n        - clauses:\n"
        "            - {attribute: userType, operator: EQUALS, value: Member}\n", "attribute: userType",
        ["topology[0].scope.filters[0].clauses[0].attribute", "aren't supported as scoping filters"]),
    "scoping_on_manager_refused": (
        BASE + MESH + "    scope:\n      filters:\n        - clauses:\n"
        "            - {attribute: manager, operator: IS NOT NULL}\n", "attribute: manager",
        ["scoping filter", "manager"]),
    "scoping_on_a_date_refused": (
        BASE + MESH + "    scope:\n      filters:\n        - clauses:\n"
        "            - {attribute: employeeHireDate, operator: IS NOT NULL}\n", "employeeHireDate",
        ["date-type attributes"]),
    # Entra: "otherMails should not be included in your cross-tenant synchronization attribute mappings as a
    # target attribute." / ProxyAddresses "cannot be set as a target attribute" (app-provisioning/known-issues.md)
    "other_mails_target_refused": (
        BASE + MESH + "    mappings:\n      - {target: otherMails, source: mail}\n", "otherMails",
        ["topology[0].mappings[0].target", "cannot be a target attribute", "known-issues.md"]),
    "proxy_addresses_target_refused": (
        BASE + MESH + "    mappings:\n      - {target: proxyAddresses, source: mail}\n", "proxyAddresses",
        ["topology[0].mappings[0].target", "read-only property in Microsoft Graph"]),
}


@pytest.mark.parametrize(("text", "needle", "expected"), AT_LINE.values(), ids=AT_LINE.keys())
def test_error_names_line_and_fix(tmp_path: Path, text: str, needle: str, expected: list[str]) -> None:
    msg = str(load_error(tmp_path, text))
    assert f":{line_of(text, needle)}:" in msg
    for part in expected:
        assert part in msg


def test_valid_base_loads(tmp_path: Path) -> None:
    text = BASE + "topology:\n  - mesh: [contoso, fabrikam, northwind]\n"
    topo = load_config(write(tmp_path, text))
    assert len(topo.pairs()) == 6


def test_typo_in_key_suggests_the_right_one(tmp_path: Path) -> None:
    text = BASE.replace("    domain: fabrikam", "    domian: fabrikam") + MESH
    err = load_error(tmp_path, text)
    msg = str(err)
    assert f":{line_of(text, 'domian')}:" in msg
    assert "tenants.fabrikam.domian: unknown key 'domian'. Did you mean 'domain'?" in msg
    assert "tenants.fabrikam.domain: required key 'domain' is missing" in msg


@pytest.mark.parametrize("key", ["client_secret", "secret"])
def test_inline_secret_is_refused_without_echoing_it(tmp_path: Path, key: str) -> None:
    text = BASE.replace("    credential: {env: XTS_SECRET_CONTOSO}\n",
                        f"    {key}: 'Zx8~Q-topsecret-value'\n") + MESH
    err = load_error(tmp_path, text)
    msg = str(err)
    assert "Zx8~Q-topsecret-value" not in msg and "topsecret" not in repr(err.issues)
    assert f"tenants.contoso.{key}" in msg
    assert f":{line_of(text, key)}:" in msg
    assert "inline secrets are refused" in msg and "credential: {env:" in msg


def test_secret_given_as_the_credential_itself(tmp_path: Path) -> None:
    text = BASE.replace("credential: {env: XTS_SECRET_CONTOSO}", "credential: 'Zx8~Q-topsecret-value'")
    text += MESH
    msg = str(load_error(tmp_path, text))
    assert "topsecret" not in msg
    assert "tenants.contoso.credential: tenant 'contoso': credential must be a mapping" in msg


def test_secret_in_env_field_is_not_echoed(tmp_path: Path) -> None:
    text = BASE.replace("{env: XTS_SECRET_CONTOSO}", "{env: 'Zx8~Q.topsecret'}")
    text += MESH
    msg = str(load_error(tmp_path, text))
    assert "topsecret" not in msg
    assert "tenants.contoso.credential.env" in msg and "NAME of an environment variable" in msg


def test_unknown_tenant_reported_together_with_other_errors(tmp_path: Path) -> None:
    text = BASE + "topology:\n  - pair: {source: contoso, target: litware}\n    user_type: Gast\n"
    err = load_error(tmp_path, text)
    paths = [i.path for i in err.issues]
    assert ("topology", 0, "pair", "target") in paths
    assert ("topology", 0, "user_type") in paths
    assert "must be 'Member' or 'Guest'" in str(err)


def _expression_text(expression: str) -> str:
    return BASE + textwrap.dedent(f"""\
        topology:
          - mesh: [contoso, fabrikam]
        sync:
          - source: contoso
            target: fabrikam
            mappings:
              - target: displayName
                type: Direct
                source: displayName
              - target: jobTitle
                type: Expression
                expression: '{expression}'
        """)


def test_bad_expression_reports_line_and_column(tmp_path: Path) -> None:
    from xts_pipeline.expressions import ExpressionError, compile

    expression = 'Join(" ", [givenName], [surname]'
    with pytest.raises(ExpressionError) as expected:
        compile(expression)
    text = _expression_text(expression)
    err = load_error(tmp_path, text)
    msg = str(err)
    assert f":{line_of(text, 'expression:')}:" in msg
    assert "sync[0].mappings[1].expression" in msg
    assert f"(expression line {expected.value.line}, column {expected.value.column})" in msg
    assert expected.value.line is not None and expected.value.column is not None


def test_unknown_function_in_expression(tmp_path: Path) -> None:
    from xts_pipeline.expressions import UnknownFunctionError, compile

    expression = 'Coalesce([jobTitle], Capitalize([department]))'
    with pytest.raises(UnknownFunctionError) as expected:
        compile(expression)
    msg = str(load_error(tmp_path, _expression_text(expression)))
    assert "sync[0].mappings[1].expression" in msg and "Capitalize" in msg
    assert f"column {expected.value.column})" in msg


def _filter_text(operator: str, value: str) -> str:
    return BASE + textwrap.dedent(f"""\
        topology:
          - hub_outbound: {{hub: contoso, spokes: [fabrikam]}}
            scope:
              filters:
                - clauses:
                    - {{attribute: department, operator: {operator}, value: '{value}'}}
        """)


def test_bad_scoping_operator(tmp_path: Path) -> None:
    text = _filter_text("EQUAL", "Sales")
    msg = str(load_error(tmp_path, text))
    assert f":{line_of(text, 'operator')}:" in msg
    assert "topology[0].scope.filters[0].clauses[0]" in msg and "EQUALS" in msg


def test_invalid_regex(tmp_path: Path) -> None:
    text = _filter_text("REGEX MATCH", "(Sales")
    msg = str(load_error(tmp_path, text))
    assert "topology[0].scope.filters[0].clauses[0]" in msg
    assert "regular expression" in msg


def test_hub_listed_as_its_own_spoke(tmp_path: Path) -> None:
    text = BASE + "topology:\n  - hub_inbound: {hub: contoso, spokes: [fabrikam, contoso]}\n"
    msg = str(load_error(tmp_path, text))
    assert "topology[0].hub_inbound.spokes[1]" in msg and "Remove it from `spokes`" in msg


def test_conflicting_duplicate_pair_names_both_places(tmp_path: Path) -> None:
    text = BASE + textwrap.dedent("""\
        topology:
          - mesh: [contoso, fabrikam, northwind]
            user_type: Member
          - hub_outbound: {hub: contoso, spokes: [fabrikam]}
            user_type: Guest
        """)
    msg = str(load_error(tmp_path, text))
    assert "topology[1].user_type" in msg
    assert "contoso->fabrikam" in msg
    assert f"topology[0] (line {line_of(text, 'mesh:')})" in msg
    assert "sync:" in msg  # tells where the difference belongs


def test_override_for_pair_that_no_block_generates(tmp_path: Path) -> None:
    text = BASE + "topology:\n  - pair: {source: contoso, target: fabrikam}\nsync:\n  - {source: fabrikam, target: contoso, user_type: Guest}\n"
    msg = str(load_error(tmp_path, text))
    assert "sync[0]: no topology block generates fabrikam->contoso" in msg
    assert "- pair: {source: fabrikam, target: contoso}" in msg


def test_bad_yaml_syntax_reports_line(tmp_path: Path) -> None:
    text = BASE + "topology:\n  - mesh: [contoso, fabrikam\n  - pair: {source: a}\n"
    err = load_error(tmp_path, text)
    assert "YAML syntax error" in str(err)
    assert err.issues[0].line is not None and err.issues[0].line >= line_of(text, "mesh:")


def test_duplicate_yaml_key(tmp_path: Path) -> None:
    text = BASE + "topology:\n  - mesh: [contoso, fabrikam]\nschedule: {interval_minutes: 30}\nschedule: {interval_minutes: 20}\n"
    msg = str(load_error(tmp_path, text))
    assert "schedule: key 'schedule' appears twice" in msg


def test_empty_scope_is_an_error(tmp_path: Path) -> None:
    text = BASE.replace("  scope: {all_members: true}\n", "  user_type: Member\n") + "topology:\n  - pair: {source: contoso, target: fabrikam}\n"
    msg = str(load_error(tmp_path, text))
    assert "contoso->fabrikam has an empty scope" in msg and "all_members: true" in msg


def test_all_members_and_groups_exclude_each_other(tmp_path: Path) -> None:
    text = BASE + "topology:\n  - pair: {source: contoso, target: fabrikam}\n    scope: {groups: [Sales]}\n"
    msg = str(load_error(tmp_path, text))
    assert "topology[0]" in msg and "exclude each other" in msg


def test_target_without_app_object_id(tmp_path: Path) -> None:
    text = BASE.replace("    app_object_id: 1d2e3f4a-5b6c-4d7e-8f9a-0b1c2d3e4f5a\n", "")
    text += "topology:\n  - pair: {source: contoso, target: fabrikam}\n"
    msg = str(load_error(tmp_path, text))
    assert "tenants.fabrikam" in msg and "app_object_id" in msg


def test_http_graph_url_is_refused(tmp_path: Path) -> None:
    text = BASE.replace("    domain: contoso.onmicrosoft.com\n",
                        "    domain: contoso.onmicrosoft.com\n    graph_url: http://graph.microsoft.com/v1.0\n")
    text += MESH
    msg = str(load_error(tmp_path, text))
    assert "tenants.contoso.graph_url: graph_url must start with https://" in msg


def test_many_errors_are_aggregated_and_sorted_by_line(tmp_path: Path) -> None:
    text = BASE.replace("domain: contoso", "domain: 'not a domain'  #") + textwrap.dedent("""\
        topology:
          - mesh: [contoso, fabrikam]
            enabld: true
        schedule: {interval_minutes: 0}
        """)
    err = load_error(tmp_path, text)
    assert len(err.issues) >= 3
    lines = [i.line for i in err.issues]
    assert lines == sorted(lines)
    assert str(err).startswith(f"invalid config {tmp_path / 'topology.yaml'}: {len(err.issues)} problems")


def test_mapping_shape_errors(tmp_path: Path) -> None:
    text = BASE + textwrap.dedent("""\
        topology:
          - mesh: [contoso, fabrikam]
            mappings:
              - {target: mail, type: Direct}
              - {target: city, type: Direct, sourc: town}
        """)
    msg = str(load_error(tmp_path, text))
    assert "topology[0].mappings[0]: a Direct mapping for 'mail' needs 'source'" in msg
    assert "topology[0].mappings[1].sourc: unknown key 'sourc'. Did you mean 'source'?" in msg


@pytest.mark.parametrize("typo, suggestion", [("topolgy", "topology"), ("sync_default", "sync_defaults"),
                                              ("inbound_policy", "inbound_policies")])
def test_top_level_typos(tmp_path: Path, typo: str, suggestion: str) -> None:
    text = BASE + f"{typo}: []\n"
    msg = str(load_error(tmp_path, text))
    assert f"{typo}: unknown key '{typo}'. Did you mean '{suggestion}'?" in msg


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(["", "contoso", "x y", "EQUALS", "[a]", "Join("]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(["mesh", "pair", "scope", "source", "target", "env", "clauses", "filters", "x"]),
        children, max_size=3),
    max_leaves=8,
)
PLACES = [("tenants", "contoso", "tenant_id"), ("tenants", "contoso", "credential"), ("tenants", "fabrikam"),
          ("topology",), ("topology", 0), ("topology", 0, "scope"), ("sync",), ("sync_defaults",),
          ("sync_defaults", "mappings"), ("sync_defaults", "scope", "filters"), ("schedule",), ("inbound_policies",)]


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(PLACES), JSONISH)
def test_any_value_anywhere_gives_a_topology_or_a_config_error(place: tuple, value: object) -> None:
    import yaml

    from xts_pipeline.config.loader import topology_from_source
    from xts_pipeline.config.yaml_source import parse_yaml

    doc = yaml.safe_load(BASE + MESH)
    node = doc
    for part in place[:-1]:
        node = node[part]
    node[place[-1]] = value
    try:
        topology_from_source(parse_yaml(yaml.safe_dump(doc), "fuzz.yaml"), Path("/nonexistent"))
    except ConfigError as exc:
        assert exc.issues and all(i.message for i in exc.issues)
        assert str(exc).startswith("invalid config")


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="ab:- \n[]{},&*!|>'\"#\t%@`?tenants", max_size=60))
def test_any_yaml_text_gives_a_topology_or_a_config_error(text: str) -> None:
    from xts_pipeline.config.loader import topology_from_source
    from xts_pipeline.config.yaml_source import parse_yaml

    try:
        topology_from_source(parse_yaml(text, "fuzz.yaml"), Path("/nonexistent"))
    except ConfigError as exc:
        assert exc.issues and "fuzz.yaml" in str(exc)


def test_expression_error_points_at_the_file_position(tmp_path: Path) -> None:
    text = BASE + textwrap.dedent("""\
        topology:
          - mesh: [contoso, fabrikam]
            mappings:
              - target: jobTitle
                type: Expression
                expression: |
                  Switch([department],
                    "x", "Sales", Lower([department]))
              - {target: city, type: Expression, expression: 'Bogus([city])'}
        """)
    err = load_error(tmp_path, text)
    by_index = {i.path[3]: i for i in err.issues}
    lines = text.splitlines()
    block, flow = by_index[0], by_index[1]
    assert lines[block.line - 1][block.column - 1:].startswith("Lower(")
    assert (block.expr_line, block.expr_column) == (2, 17)
    assert lines[flow.line - 1][flow.column - 1:].startswith("Bogus(")
    assert f"{block.line}:{block.column}: topology[0].mappings[0].expression (expression line 2, column 17)" in str(err)


@pytest.mark.parametrize(("old", "new", "why"), [
    ("tenant_id: 9c5d131d-b1c3-4fc4-9e3f-c6557947d551", 'tenant_id: "9c5d131d-b1c3-4fc4-9e3f-c6557947d551\\n"',
     "is not a GUID"),
    ("  contoso:\n", '  "contoso\\n":\n', "must start with a letter"),
])
def test_a_value_ending_in_a_newline_is_refused(tmp_path: Path, old: str, new: str, why: str) -> None:
    """Patterns are matched whole: Python's `$` alone would accept a value ending in a newline."""
    assert old in BASE
    assert why in str(load_error(tmp_path, BASE.replace(old, new, 1) + MESH))
