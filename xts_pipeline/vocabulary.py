"""The project's shared words, decided once: every other module imports them from here.

A pair is keyed `source__target` (DuckDB rows, Dagster partitions, provenance) and shown `source->target`
(messages, tags, printed commands). Plan actions, hold kinds, the link extensions' names and the plan
fingerprint (defined in fingerprint.py, a leaf, and re-exported here) are the same in the planner, the
guardrails, apply, the log and the CLI.
"""

from __future__ import annotations

from xts_pipeline.fingerprint import FINGERPRINT_CHARS, is_fingerprint, plan_fingerprint

__all__ = ["ACTIONS", "BLOCKED", "FINGERPRINT_CHARS", "HELD", "HOLDS", "LINK_EXTENSIONS", "PAIR_SEP", "PAIR_SHOWN_SEP",
           "WRITE_ACTIONS", "extension_name", "is_fingerprint", "link_names", "pair_key", "pair_name",
           "plan_fingerprint", "shown_pair"]

PAIR_SEP, PAIR_SHOWN_SEP = "__", "->"

# Every action a plan row can carry, and those that write to the target (`skip` writes nothing).
ACTIONS = ("create", "adopt", "update", "disable", "delete", "restore", "skip")
WRITE_ACTIONS = ("create", "adopt", "update", "disable", "delete", "restore")

# `provisioning_log.hold` of a write kept back: a per-user guardrail held the user, or the pair was stopped.
HOLDS = ("held", "blocked")
HELD, BLOCKED = HOLDS

# The directory extensions that link a target user to its source account (short names; see extension_name).
LINK_EXTENSIONS = ("xtsSourceTenantId", "xtsSourceObjectId", "xtsSyncConfig")


def pair_key(source: str, target: str) -> str:
    """The pair key used everywhere data is stored or partitioned."""
    return f"{source}{PAIR_SEP}{target}"


def pair_name(source: str, target: str) -> str:
    """How a pair is shown to people."""
    return f"{source}{PAIR_SHOWN_SEP}{target}"


def shown_pair(key: str) -> str:
    """A pair key as people read it (`a__b` -> `a->b`); tenant names never contain `__` (config refuses it)."""
    return key.replace(PAIR_SEP, PAIR_SHOWN_SEP, 1)


def extension_name(app_client_id: str, short: str) -> str:
    """Graph's name for a directory extension registered on the app with this appId."""
    return f"extension_{app_client_id.replace('-', '')}_{short}"


def link_names(app_client_id: str) -> dict[str, str]:
    """The link extensions' Graph names for one target app."""
    return {short: extension_name(app_client_id, short) for short in LINK_EXTENSIONS}
