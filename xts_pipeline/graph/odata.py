"""A tiny OData $filter builder whose escaping makes injection impossible by construction.

Why: filters are built from directory data (mail addresses, names) that an attacker in a source
tenant controls. A value like `x' or 1 eq 1` must stay one string literal. Every value goes through
`literal()`, every property name through a strict pattern, and clauses are `Filter` objects so a raw
string can't be spliced into `and_()` by accident.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "Filter",
    "ODataFilterError",
    "quote",
    "literal",
    "prop",
    "eq",
    "ne",
    "in_",
    "in_chunks",
    "fits_literal",
    "ADVANCED_PROPERTIES",
    "startswith",
    "endswith",
    "any_eq",
    "and_",
    "or_",
    "not_",
    "raw",
]

_PROP = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

Value = str | bool | int | float | None


class ODataFilterError(ValueError):
    """A filter was asked for with an unsafe property name or value."""


@dataclass(frozen=True, slots=True)
class Filter:
    """One built $filter expression. `compound` tells and_/or_ to parenthesise it."""

    text: str
    compound: bool = False

    def __str__(self) -> str:
        return self.text

    def __and__(self, other: Filter) -> Filter:
        return and_(self, other)

    def __or__(self, other: Filter) -> Filter:
        return or_(self, other)


def quote(value: str) -> str:
    """An OData string literal: single quotes doubled, wrapped in quotes; control chars refused.

    Control characters can't occur in directory string attributes and would only hide tricks in logs.
    """
    if not isinstance(value, str):
        raise ODataFilterError(f"quote() takes a string, got {type(value).__name__}")
    if _CONTROL.search(value):
        raise ODataFilterError(
            f"filter value {value[:40]!r} contains a control character; remove it from the source attribute"
        )
    return "'" + value.replace("'", "''") + "'"


def literal(value: Value) -> str:
    """Any supported Python value as an OData literal (bool before int: bool is an int subclass)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ODataFilterError(f"filter value {value!r} is not a finite number")
        return repr(value)
    if isinstance(value, str):
        return quote(value)
    raise ODataFilterError(f"filter value of type {type(value).__name__} is not supported; pass str/int/bool/None")


def prop(name: str) -> str:
    """A property path, checked against a safe identifier pattern (extension_…, a/b allowed)."""
    if not isinstance(name, str) or not _PROP.fullmatch(name):
        raise ODataFilterError(
            f"{name!r} is not a valid property name for a filter; use letters, digits, '_' and '/'"
        )
    return name


def eq(name: str, value: Value) -> Filter:
    """`name eq value`."""
    return Filter(f"{prop(name)} eq {literal(value)}")


def ne(name: str, value: Value) -> Filter:
    """`name ne value` (an advanced query in Graph: needs ConsistencyLevel eventual + $count)."""
    return Filter(f"{prop(name)} ne {literal(value)}")


MAX_IN_VALUES = 15  # concepts/aad-advanced-queries.md: Graph takes at most 15 values in one `in`
MAX_LITERAL = 120  # the longest string literal a directory $filter accepts (docs/sandbox.md)


def in_(name: str, values: Iterable[Value]) -> Filter:
    """`name in ('a','b')`; an empty list is refused because it would match nothing silently, and more than
    15 values because Graph refuses them (use `in_chunks`)."""
    items = [literal(v) for v in values]
    if not items:
        raise ODataFilterError(f"in_({name!r}, []) has no values; skip the lookup instead")
    if len(items) > MAX_IN_VALUES:
        raise ODataFilterError(f"in_({name!r}, ...) has {len(items)} values; Graph takes at most {MAX_IN_VALUES} "
                               "in one 'in': use in_chunks() and one request per chunk")
    return Filter(f"{prop(name)} in ({','.join(items)})")


def in_chunks(name: str, values: Iterable[Value]) -> list[Filter]:
    """One `in` filter per 15 values (Graph's limit), in order; no values gives no filter."""
    vals = list(dict.fromkeys(values))
    return [in_(name, vals[i:i + MAX_IN_VALUES]) for i in range(0, len(vals), MAX_IN_VALUES)]


def fits_literal(value: Value) -> bool:
    """Whether Graph accepts this value in a $filter comparison (strings up to 120 characters)."""
    return not isinstance(value, str) or len(value) <= MAX_LITERAL


def startswith(name: str, prefix: str) -> Filter:
    """`startswith(name,'prefix')`."""
    return Filter(f"startswith({prop(name)},{quote(prefix)})")


def endswith(name: str, suffix: str) -> Filter:
    """`endswith(name,'suffix')` (an advanced query in Graph)."""
    return Filter(f"endswith({prop(name)},{quote(suffix)})")


def any_eq(collection: str, value: Value) -> Filter:
    """`collection/any(x:x eq value)` for string collections such as otherMails or proxyAddresses."""
    return Filter(f"{prop(collection)}/any(x:x eq {literal(value)})")


def _join(op: str, clauses: tuple[Filter, ...]) -> Filter:
    for c in clauses:
        if not isinstance(c, Filter):
            raise ODataFilterError(f"{op}_() takes Filter objects built by graph.odata, got {type(c).__name__}")
    if not clauses:
        raise ODataFilterError(f"{op}_() needs at least one clause")
    if len(clauses) == 1:
        return clauses[0]
    parts = [f"({c.text})" if c.compound else c.text for c in clauses]
    return Filter(f" {op} ".join(parts), compound=True)


def and_(*clauses: Filter) -> Filter:
    """Clauses joined with `and`; compound operands are parenthesised so precedence can't shift."""
    return _join("and", clauses)


def or_(*clauses: Filter) -> Filter:
    """Clauses joined with `or`; compound operands are parenthesised."""
    return _join("or", clauses)


def not_(clause: Filter) -> Filter:
    """`not (clause)` (an advanced query in Graph)."""
    if not isinstance(clause, Filter):
        raise ODataFilterError("not_() takes a Filter built by graph.odata")
    return Filter(f"not ({clause.text})")


def raw(text: str) -> Filter:
    """Trust a hand-written filter (constants in code only - never interpolate data into it)."""
    return Filter(text, compound=True)


# includes/filter-directory-objects.md: user properties whose every operator, `eq` included, is an
# advanced query (ConsistencyLevel: eventual + $count=true).
ADVANCED_PROPERTIES = frozenset({
    "companyName", "employeeHireDate", "employeeType", "mobilePhone", "officeLocation",
    "onPremisesExtensionAttributes", "onPremisesImmutableId", "onPremisesLastSyncDateTime",
    "onPremisesSamAccountName", "passwordPolicies", "postalCode", "preferredLanguage", "showInAddressList",
    "streetAddress", "faxNumber",
})
_ADVANCED = re.compile(r"\b(ne|not|endswith)\b|\$count|\b(eq|ne)\s+null\b", re.IGNORECASE)
_NAMES = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def needs_advanced(filter_text: str | None) -> bool:
    """Whether Graph wants ConsistencyLevel: eventual + $count=true for this filter: an advanced operator
    (ne, not, endsWith, a null comparison) or a property that needs it even for eq.

    Only looks outside string literals so a value containing ' ne ' doesn't flip it.
    """
    if not filter_text:
        return False
    outside = re.sub(r"'(?:[^']|'')*'", "''", filter_text)
    if _ADVANCED.search(outside):
        return True
    return any(n in ADVANCED_PROPERTIES for n in _NAMES.findall(outside))
