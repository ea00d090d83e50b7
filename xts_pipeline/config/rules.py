"""The config's only bridge to the rule languages (expressions, mappings, scoping).

Kept in one place so the loader reports rule errors with the same path/line machinery as
everything else, and so a change in those modules' APIs touches one file here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from .errors import PathT
from .explain import explain

_PATH_TOKEN = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


@dataclass(frozen=True)
class RuleProblem:
    """A problem inside one rule, at a path relative to the rule's own place in the file."""

    path: PathT
    message: str
    expr_line: int | None = None
    expr_column: int | None = None


def parse_path(path: Any) -> PathT:
    """Accept a path as tuple/list or as text like `[0].clauses[1].operator`."""
    if path is None:
        return ()
    if isinstance(path, (tuple, list)):
        return tuple(path)
    return tuple(int(i) if i else name for i, name in _PATH_TOKEN.findall(str(path)))


# Settings that Entra models as constant mappings; here they are first-class sync settings.
SETTING_TARGETS = {"usertype": "user_type", "showinaddresslist": "show_in_address_list"}


def check_mapping(raw: Any) -> list[RuleProblem]:
    """Validate one mapping override against the mappings module's `Mapping` model."""
    from xts_pipeline.expressions import ExpressionError
    from xts_pipeline.mappings import Mapping

    problems: list[RuleProblem] = []
    target = raw.get("target") if isinstance(raw, dict) else None
    if isinstance(target, str) and target.strip("[] ").lower() in SETTING_TARGETS:
        setting = SETTING_TARGETS[target.strip("[] ").lower()]
        problems.append(RuleProblem(("target",), f"{target} is set with the `{setting}:` sync setting, not a "
                                                 f"mapping; remove this mapping and write `{setting}: ...`."))
    try:
        Mapping.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors(include_input=False, include_url=False):
            cause = (err.get("ctx") or {}).get("error")
            if isinstance(cause, ExpressionError):
                problems.append(RuleProblem(
                    tuple(err["loc"]) or ("expression",),
                    f"{_sentence(str(cause))} Fix the expression (see Entra's 'Reference for writing "
                    "expressions for attribute mappings').",
                    getattr(cause, "line", None),
                    getattr(cause, "column", None),
                ))
            else:
                problems.append(RuleProblem(tuple(err["loc"]), explain(err, Mapping)))
    return problems


def check_filters(filters: Sequence[dict[str, Any]]) -> list[RuleProblem]:
    """Let xts_pipeline.scoping judge operators, values and regexes; report its path and hint."""
    from xts_pipeline.scoping import ScopingError, validate_filters

    try:
        validate_filters(list(filters), path="filters")
    except ScopingError as exc:
        raw_path = getattr(exc, "path", "") or ""
        message = str(exc).removeprefix(f"{raw_path}: ")
        path = parse_path(raw_path)
        if path[:1] == ("filters",):
            path = path[1:]
        hint = getattr(exc, "hint", None)
        if hint and str(hint) not in message:
            message = f"{message}. {hint}"
        return [RuleProblem(path, message)]
    return []


def merge_and_compile(
    overrides: Sequence[dict[str, Any]], user_type: Any, show_in_address_list: bool
) -> tuple[list[Any], Any]:
    """Entra defaults, then the pair's userType/showInAddressList constants, then its overrides; compiled.

    userType applies "Only during object creation" unless the setting says `apply: Always`: "If the B2B
    user already exists in the target tenant then Member (userType) will not changed to Member, unless the
    Apply this mapping setting is set to Always" (cross-tenant-synchronization-configure.md).
    """
    from xts_pipeline.mappings import ENTRA_DEFAULT_MAPPINGS, Mapping, compile_mappings, merge_mappings

    value = user_type if isinstance(user_type, str) else user_type.value
    apply = "OnCreateOnly" if isinstance(user_type, str) else user_type.apply
    settings = [
        Mapping(target="userType", type="Constant", value=value, apply=apply),
        Mapping(target="showInAddressList", type="Constant", value="True" if show_in_address_list else "False"),
    ]
    specs = merge_mappings(ENTRA_DEFAULT_MAPPINGS, [*settings, *(Mapping.model_validate(m) for m in overrides)])
    return list(specs), compile_mappings(specs)


def _sentence(text: str) -> str:
    """End a message with exactly one sentence mark."""
    text = text.strip()
    return text if text.endswith((".", "?", "!")) else f"{text}."
