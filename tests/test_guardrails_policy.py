"""The inbound policy model: safe defaults, the documented example, and its place in the topology."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import yaml

from xts_pipeline.config import default_config_path, load_config
from xts_pipeline.guardrails.policy import InboundPolicy, QuarantinePolicy

DOC = Path(__file__).resolve().parents[1] / "docs" / "guardrails.md"


def test_defaults_are_safe() -> None:
    p = InboundPolicy()
    assert p.allowed_sources == []  # nobody writes until the target lists the source
    assert p.deletions.threshold == 500  # Entra's accidental-deletion default
    assert p.volume.max_creates_per_cycle == 500 and p.volume.max_creates_pct_of_target == 10
    assert p.impersonation.include_directory_role_holders and p.impersonation.include_role_assignable_group_members
    assert p.privilege.treat_role_assignable_as_privileged
    assert p.on_violation.impersonation == "block_user" and p.on_violation.volume == "block_cycle"
    q = p.quarantine
    assert (q.min_failures, q.failure_rate, q.max_failures, q.disable_after_days) == (5_000, 0.4, 40_000, 28)
    assert [q.delay(i) for i in range(5)] == [timedelta(hours=h) for h in (6, 12, 24, 24, 24)]


def test_documented_example_validates() -> None:
    block = re.search(r"```yaml\n(.*?)```", DOC.read_text(), re.S).group(1)
    policy = InboundPolicy.model_validate(yaml.safe_load(block)["inbound_policies"]["fabrikam"])
    assert policy.attribute_policy["jobTitle"].deny_patterns == ["(?i)admin", "(?i)\\bchief\\b"]
    assert policy.allowed_mail_domains == ["contoso.com", "*.contoso.com"]


def test_topology_embeds_the_policy() -> None:
    topo = load_config(default_config_path())
    assert "contoso" in topo.inbound_policy("fabrikam").allowed_sources
    assert isinstance(topo.inbound_policy("fabrikam"), InboundPolicy)


def test_quarantine_backoff_must_be_positive() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="backoff_hours"):
        QuarantinePolicy(backoff_hours=[])
