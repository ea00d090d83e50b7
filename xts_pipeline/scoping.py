"""Entra provisioning scoping filters, evaluated the way the Entra provisioning service documents them.

Source: MicrosoftDocs/entra-docs, docs/identity/app-provisioning/
define-conditional-rules-for-provisioning-user-accounts.md ("Create a scoping filter", step 8).

* Clauses inside one filter are ANDed; filters are ORed; no filters at all means everyone is in scope.
* "Scoping filters will return false if the value is null / empty": a missing, ``None``, ``""`` or
  empty-list attribute makes every clause false, except ``IS NULL`` (which is exactly that test).
  That includes ``NOT EQUALS`` and ``NOT REGEX MATCH`` (the doc says so for the latter explicitly).
* "Filtering is not supported for multi-valued attributes": a list-valued attribute makes its clause
  false (``IS NULL``/``IS NOT NULL`` still see an empty list as empty).
* EQUALS / NOT EQUALS / Includes / ENDS_WITH / & / !& compare ordinally and case-sensitively, like .NET
  ``string.Equals`` / ``Contains`` / ``EndsWith``. REGEX MATCH is .NET ``Regex.IsMatch``: an
  unanchored *search*, case-sensitive (so ``([1-9][0-9])`` also matches "100"; anchor it if you mean it).
* ``&`` and ``!&``: the doc defines them as "the evaluated attribute exists in the input string value"
  (and "does not exist"), i.e. the attribute is a substring of the configured value. Issue 3 calls them
  "bitwise"; we implement the documented meaning, not a bitwise AND.
* Greater_Than / Greater_Than_OR_EQUALS need an integer in the config (else ``ScopingError``) and an
  integer attribute (else the clause is false).

The loop guard (:func:`is_internal_member`) is applied by :func:`in_scope` and, by default, by
:func:`compile_filters`: a user we did not create as an internal member can never be synced onward.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any

from xts_pipeline.external import is_external

__all__ = [
    "OPERATORS",
    "ScopingError",
    "attribute_getter",
    "compile_filters",
    "direct_members",
    "in_scope",
    "is_assigned",
    "is_internal_member",
    "validate_filters",
]

UserPredicate = Callable[[Mapping[str, Any]], bool]

#: Operator names exactly as the Entra doc spells them.
OPERATORS: tuple[str, ...] = (
    "&",
    "!&",
    "ENDS_WITH",
    "EQUALS",
    "Greater_Than",
    "Greater_Than_OR_EQUALS",
    "Includes",
    "IS FALSE",
    "IS NOT NULL",
    "IS NULL",
    "IS TRUE",
    "NOT EQUALS",
    "NOT REGEX MATCH",
    "REGEX MATCH",
)
_UNARY = frozenset({"IS FALSE", "IS NOT NULL", "IS NULL", "IS TRUE"})
_INTEGER_OPS = frozenset({"Greater_Than", "Greater_Than_OR_EQUALS"})
_REGEX_OPS = frozenset({"REGEX MATCH", "NOT REGEX MATCH"})

# Graph user properties that are collections; the doc says filtering on them is not supported.
_MULTI_VALUED = frozenset(
    {"proxyAddresses", "otherMails", "businessPhones", "imAddresses", "memberOf", "assignedPlans",
     "assignedLicenses", "identities", "provisionedPlans", "schools", "skills", "interests",
     "pastProjects", "responsibilities"}
)
_EXT_ATTR = re.compile(r"extensionAttribute(?:[1-9]|1[0-5])")

# Attributes Entra refuses in scoping filters: "The appRoleAssignments, userType, manager, and date-type
# attributes (for example, StatusHireDate, startDate, endDate, StatusTerminationDate, accountExpires)
# aren't supported as scoping filters" (app-provisioning/known-issues.md, "Unsupported scoping filters").
UNSUPPORTED_SCOPING = frozenset({"approleassignments", "usertype", "manager"})
_DATE_ATTRIBUTES = frozenset({
    "statushiredate", "startdate", "enddate", "statusterminationdate", "accountexpires", "employeehiredate",
    "employeeleavedatetime", "createddatetime", "deleteddatetime", "lastpasswordchangedatetime",
    "onpremiseslastsyncdatetime", "refreshtokensvalidfromdatetime", "signinsessionsvalidfromdatetime",
    "externaluserstatechangedatetime", "lastsignindatetime",
})
_UNSUPPORTED_REASON = ("Entra: \"The appRoleAssignments, userType, manager, and date-type attributes (for example, "
                       "StatusHireDate, startDate, endDate, StatusTerminationDate, accountExpires) aren't supported "
                       "as scoping filters\" (known-issues.md)")


def unsupported_scoping_attribute(attribute: str) -> bool:
    """True for an attribute Entra does not support in scoping filters (see UNSUPPORTED_SCOPING)."""
    low = attribute.strip().lower()
    return low in UNSUPPORTED_SCOPING or low in _DATE_ATTRIBUTES or low.endswith("datetime")


class ScopingError(ValueError):
    """A scoping filter in the config is invalid; ``path`` says where (e.g. ``filters[1].clauses[0]``)."""

    def __init__(self, message: str, path: str = "") -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


# ---------------------------------------------------------------------------------------------------
# Loop guard and assignment scope
# ---------------------------------------------------------------------------------------------------

def is_internal_member(user: Mapping[str, Any]) -> bool:
    """True only for a tenant's own members: the loop guard that stops synced users being re-synced.

    A user is internal when userType is "Member" (a missing/null userType is *not* accepted: fail
    closed) and it is not external by :func:`xts_pipeline.external.is_external` (creationType
    Invitation, userType Guest, an ``#EXT#`` UPN, or any externalUserState: a member converted to B2B
    keeps userType Member and its own UPN, but signs in from outside). Comparisons ignore case.
    """
    user_type = user.get("userType")
    if not isinstance(user_type, str) or user_type.casefold() != "member":
        return False
    return not is_external(user)


def direct_members(
    memberships: Iterable[tuple[str, str]], assigned_group_ids: Iterable[str]
) -> frozenset[str]:
    """Ids that are *direct* members of the assigned groups ("assigned users and groups" scope).

    Entra's provisioning service does not expand nested groups: a nested group's id lands in the set,
    but its own members do not, so they never match a user id.
    """
    wanted = frozenset(assigned_group_ids)
    return frozenset(member for group, member in memberships if group in wanted)


def is_assigned(user_id: str, direct_member_ids: AbstractSet[str] | None) -> bool:
    """Assignment scope: ``None`` means "sync all users", otherwise direct membership (see above)."""
    return direct_member_ids is None or user_id in direct_member_ids


# ---------------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------------

def _operator_hint(op: object) -> str:
    text = str(op)
    by_fold = {o.casefold(): o for o in OPERATORS}
    norm = re.sub(r"[\s_]+", " ", text).strip().casefold()
    for cand in OPERATORS:
        if re.sub(r"[\s_]+", " ", cand).casefold() == norm:
            return f" — did you mean '{cand}'? (operator names are spelled exactly as Entra spells them)"
    if text.casefold() in by_fold:
        return f" — did you mean '{by_fold[text.casefold()]}'?"
    close = difflib.get_close_matches(text.upper(), [o.upper() for o in OPERATORS], n=1, cutoff=0.6)
    if close:
        match = next(o for o in OPERATORS if o.upper() == close[0])
        return f" — did you mean '{match}'?"
    return f"; valid operators: {', '.join(repr(o) for o in OPERATORS)}"


def _as_int(value: Any) -> int | None:
    """Integer value of an int or an integer string; ``None`` for anything else (bool included)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    return None


def _validate_clause(clause: Any, path: str) -> None:
    if not isinstance(clause, Mapping):
        raise ScopingError("a clause must be a mapping with 'attribute', 'operator' and 'value'", path)
    unknown = set(clause) - {"attribute", "operator", "value"}
    if unknown:
        raise ScopingError(f"unknown key(s) {sorted(map(str, unknown))}; a clause has "
                           "'attribute', 'operator' and 'value'", path)
    attr = clause.get("attribute")
    if not isinstance(attr, str) or not attr.strip():
        raise ScopingError("'attribute' must name a source user attribute, e.g. 'department'",
                           f"{path}.attribute")
    if unsupported_scoping_attribute(attr):
        raise ScopingError(f"attribute '{attr}' cannot be used in a scoping filter. {_UNSUPPORTED_REASON}; "
                           "scope by another attribute or by assigned groups", f"{path}.attribute")
    if attr in _MULTI_VALUED:
        raise ScopingError(f"attribute '{attr}' is multi-valued; Entra scoping filters do not support "
                           "multi-valued attributes — use a single-valued attribute", f"{path}.attribute")
    op = clause.get("operator")
    if op == "IsMemberOf":
        raise ScopingError("the IsMemberOf filter is not supported by Entra; scope by assigned groups "
                           "instead", f"{path}.operator")
    if op not in OPERATORS:
        raise ScopingError(f"unknown operator {op!r}{_operator_hint(op)}", f"{path}.operator")
    value = clause.get("value")
    vpath = f"{path}.value"
    if op in _UNARY:
        if value not in (None, ""):
            raise ScopingError(f"operator '{op}' takes no value; remove 'value' ({value!r})", vpath)
        return
    if op in _INTEGER_OPS:
        if _as_int(value) is None:
            raise ScopingError(f"operator '{op}' compares integers; 'value' must be an integer, "
                               f"got {value!r}", vpath)
        return
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ScopingError(f"operator '{op}' needs a string 'value', got {value!r}; put the text in "
                           "quotes (YAML reads yes/no/true/null unquoted as non-strings)", vpath)
    if op in _REGEX_OPS:
        try:
            re.compile(str(value))
        except re.error as exc:
            raise ScopingError(f"invalid regular expression {value!r}: {exc}; fix the pattern "
                               "(escape special characters with a backslash)", vpath) from None


def validate_filters(filters: Any, path: str = "filters") -> None:
    """Check a filter list's shape, operator names, values and regexes; raise ``ScopingError``.

    ``path`` prefixes error locations so the config loader can report e.g.
    ``sync[2].scope.filters[1].clauses[0].operator``.
    """
    if filters is None:
        return
    if not isinstance(filters, list | tuple):
        raise ScopingError("scoping filters must be a list of {clauses: [...]} mappings", path)
    for i, flt in enumerate(filters):
        fpath = f"{path}[{i}]"
        if not isinstance(flt, Mapping) or "clauses" not in flt:
            raise ScopingError("a scoping filter must be a mapping with a 'clauses' list", fpath)
        extra = set(flt) - {"clauses", "title", "name"}
        if extra:
            raise ScopingError(f"unknown key(s) {sorted(map(str, extra))}; a filter has 'clauses' "
                               "(and optionally 'title')", fpath)
        clauses = flt["clauses"]
        if not isinstance(clauses, list | tuple) or not clauses:
            raise ScopingError("'clauses' must be a non-empty list; delete the filter if it has none",
                               f"{fpath}.clauses")
        for j, clause in enumerate(clauses):
            _validate_clause(clause, f"{fpath}.clauses[{j}]")


# ---------------------------------------------------------------------------------------------------
# Compilation
# ---------------------------------------------------------------------------------------------------

def attribute_getter(attribute: str) -> Callable[[Mapping[str, Any]], Any]:
    """Attribute lookup; extensionAttribute1-15 may also sit under onPremisesExtensionAttributes (Graph)."""
    if _EXT_ATTR.fullmatch(attribute):
        def get_ext(user: Mapping[str, Any]) -> Any:
            value = user.get(attribute)
            if value is None:
                nested = user.get("onPremisesExtensionAttributes")
                if isinstance(nested, Mapping):
                    value = nested.get(attribute)
            return value
        return get_ext
    return lambda user: user.get(attribute)


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, list | tuple) and not value)


def _text(value: Any) -> str:
    """The string .NET would compare: bools as True/False, numbers as their digits."""
    return value if isinstance(value, str) else str(value)


def _is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().casefold() == "true")


def _is_false(value: Any) -> bool:
    return value is False or (isinstance(value, str) and value.strip().casefold() == "false")


def _clause_test(op: str, value: Any) -> Callable[[Any], bool]:
    """Test for a non-empty, single-valued attribute value."""
    if op == "IS TRUE":
        return _is_true
    if op == "IS FALSE":
        return _is_false
    if op == "IS NOT NULL":
        return lambda v: True
    if op in _INTEGER_OPS:
        limit = _as_int(value)
        assert limit is not None  # validated
        if op == "Greater_Than":
            return lambda v: (n := _as_int(v)) is not None and n > limit
        return lambda v: (n := _as_int(v)) is not None and n >= limit
    s = _text(value)
    if op == "EQUALS":
        return lambda v: _text(v) == s
    if op == "NOT EQUALS":
        return lambda v: _text(v) != s
    if op == "Includes":
        return lambda v: s in _text(v)
    if op == "ENDS_WITH":
        return lambda v: _text(v).endswith(s)
    if op == "&":
        return lambda v: _text(v) in s
    if op == "!&":
        return lambda v: _text(v) not in s
    rx = re.compile(s)
    if op == "REGEX MATCH":
        return lambda v: rx.search(_text(v)) is not None
    return lambda v: rx.search(_text(v)) is None  # NOT REGEX MATCH


def _compile_clause(clause: Mapping[str, Any]) -> UserPredicate:
    get = attribute_getter(clause["attribute"])
    op = clause["operator"]
    if op == "IS NULL":
        return lambda user: _is_empty(get(user))
    test = _clause_test(op, clause.get("value"))

    def check(user: Mapping[str, Any]) -> bool:
        v = get(user)
        if v is None or v == "" or isinstance(v, list | tuple | dict):
            return False  # null/empty -> false; multi-valued -> not supported -> false
        return test(v)

    return check


def _all(preds: list[UserPredicate]) -> UserPredicate:
    if len(preds) == 1:
        return preds[0]
    return lambda user: all(p(user) for p in preds)


def compile_filters(filters: Any, *, loop_guard: bool = True, path: str = "filters") -> UserPredicate:
    """Validate once and return a fast ``user -> bool`` for 100k-user scans.

    With ``loop_guard`` (default) only :func:`is_internal_member` users can pass.
    """
    validate_filters(filters, path)
    compiled = [_all([_compile_clause(c) for c in f["clauses"]]) for f in (filters or [])]
    if not compiled:
        match: UserPredicate = lambda user: True  # noqa: E731 - no filters: everyone
    elif len(compiled) == 1:
        match = compiled[0]
    else:
        match = lambda user: any(p(user) for p in compiled)  # noqa: E731
    if not loop_guard:
        return match
    return lambda user: is_internal_member(user) and match(user)


def in_scope(filters: Any, user: Mapping[str, Any]) -> bool:
    """True when ``user`` is an internal member and passes any filter (all its clauses).

    Compiles on every call; use :func:`compile_filters` in loops.
    """
    return compile_filters(filters)(user)
