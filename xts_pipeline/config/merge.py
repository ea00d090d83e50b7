"""Deep-merging of sync-settings fragments, and finding where two fragments disagree.

Mappings merge by their `target` attribute (a later mapping for the same target replaces the
earlier one); other lists are replaced whole; dicts merge key by key.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .errors import PathT


def merge_mappings_by_target(base: list[dict[str, Any]], over: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Later mappings replace earlier ones with the same target; new targets are appended."""
    out = list(base)
    for mapping in over:
        target = _target_key(mapping)
        for i, existing in enumerate(out):
            if target is not None and _target_key(existing) == target:
                out[i] = mapping
                break
        else:
            out.append(mapping)
    return out


def _target_key(mapping: dict[str, Any]) -> str | None:
    """Targets compare case-insensitively, with or without [brackets], as Entra's attribute names do."""
    target = mapping.get("target")
    return target.strip("[] ").lower() if isinstance(target, str) else None


def deep_merge(base: dict[str, Any], over: dict[str, Any], _top: bool = True) -> dict[str, Any]:
    """`over` wins; nested dicts merge; top-level `mappings` merge by target."""
    out = dict(base)
    for key, value in over.items():
        if _top and key == "mappings":
            out[key] = merge_mappings_by_target(out.get(key, []), value)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value, _top=False)
        else:
            out[key] = value
    return out


def leaves(fragment: dict[str, Any], prefix: PathT = ()) -> Iterator[tuple[PathT, Any]]:
    """Every explicitly set value, by path; mappings are keyed by their target."""
    for key, value in fragment.items():
        if not prefix and key == "mappings":
            for i, mapping in enumerate(value):
                yield ("mappings", f"target={_target_key(mapping) or i}"), mapping
        elif isinstance(value, dict) and value:
            yield from leaves(value, (*prefix, key))
        else:
            yield (*prefix, key), value


def conflicts(first: dict[str, Any], second: dict[str, Any]) -> list[tuple[PathT, Any, Any]]:
    """Paths both fragments set to different values: (path, first value, second value)."""
    a = dict(leaves(first))
    return [(path, a[path], value) for path, value in leaves(second) if path in a and a[path] != value]
