"""The target's inbound policy: what a target tenant accepts from its sources.

Placeholder owned by the guardrails work; config.py imports `InboundPolicy` from here.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class InboundPolicy(BaseModel):
    """Inbound policy of one target tenant. Every default is safe."""

    model_config = ConfigDict(extra="forbid")

    allowed_sources: list[str] | None = None
