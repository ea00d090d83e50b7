"""The demo topology against the demo sandbox: names, groups and credentials line up end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from xts_pipeline.config import apply_sandbox, default_config_path, load_config


def test_demo_topology_matches_the_demo_seed() -> None:
    from xts_pipeline.sandbox.seed import demo_seed

    topo = load_config(default_config_path())
    seeds = {t.name: t for t in demo_seed().tenants}
    assert set(topo.tenants) == set(seeds)
    for name, tenant in topo.tenants.items():
        assert tenant.domain == seeds[name].domain
    for pair in topo.pairs():
        groups = {g["displayName"] for g in seeds[pair.source].groups}
        missing = set(pair.scope.groups) - groups
        assert not missing, f"{pair.name}: scope groups {missing} are not in the {pair.source} seed"


@pytest.mark.timeout(180)
def test_demo_topology_signs_in_and_reads_through_the_sandbox(tmp_path: Path) -> None:
    from xts_pipeline.graph import GraphClient
    from xts_pipeline.sandbox.process import SandboxProcess

    with SandboxProcess(tmp_path / "sb", seed="demo", throttle="off") as sandbox:
        topo = apply_sandbox(load_config(default_config_path()), sandbox.state_dir)
        for pair in topo.pairs():
            client = GraphClient(topo.tenants[pair.source].connection())
            page = next(iter(client.iter_users(select=["id", "displayName"], top=5)))
            assert page and all("id" in u for u in page)
            if pair.scope.groups:
                names = {g["displayName"] for batch in client.iter_groups(select=["id", "displayName"])
                         for g in batch}
                assert set(pair.scope.groups) <= names
