"""The seed's data (names.yaml) as the tuples the generator draws from.

The pools are data, kept apart from the algorithm in generate.py so that a name or an office can be read
and reviewed as a list; the YAML is package data, read once when the seed is first imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import yaml


class Place(NamedTuple):
    """An office: its address parts, Graph's usageLocation, the phone prefix and the share of people."""

    city: str
    state: str | None
    country: str
    usage_location: str
    phone_prefix: str
    weight: int


class Department(NamedTuple):
    """A department: its share of people, its head's title and its individual contributors' titles."""

    name: str
    weight: int
    head: str
    titles: tuple[str, ...]


class DirectoryRole(NamedTuple):
    """An activated built-in role and how many of the tenant's administrators hold it."""

    display_name: str
    template_id: str
    description: str
    holders: int


def _load() -> dict[str, Any]:
    return yaml.safe_load(Path(__file__).with_name("names.yaml").read_text(encoding="utf-8"))


_DOC = _load()
GIVEN: tuple[str, ...] = tuple(_DOC["given_names"])
SURNAMES: tuple[str, ...] = tuple(_DOC["surnames"])
PLACES: tuple[Place, ...] = tuple(Place(**p) for p in _DOC["places"])
DEPARTMENTS: tuple[Department, ...] = tuple(
    Department(d["name"], d["weight"], d["head"], tuple(d["titles"])) for d in _DOC["departments"])
GUEST_DOMAINS: tuple[str, ...] = tuple(_DOC["guest_domains"])
ROLES: tuple[DirectoryRole, ...] = tuple(DirectoryRole(**r) for r in _DOC["directory_roles"])
del _DOC
