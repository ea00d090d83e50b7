"""Server-side OData `$filter` for the sandbox: parse once into a predicate over a user/group dict.

Supports eq, ne, gt, ge, lt, le, startswith, endswith, in, not, and, or, parentheses, `null`,
booleans, numbers, unquoted datetimes/GUIDs and `coll/any(x: x eq '..')`. String comparisons are
case-insensitive, as in the directory. `ODataQuery.advanced` says whether Graph would demand
`ConsistencyLevel: eventual` + `$count=true`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

Predicate = Callable[[dict], bool]


class ODataError(ValueError):
    """A `$filter` Graph would refuse; `.code` is Graph's error code."""

    def __init__(self, message: str, code: str = "BadRequest") -> None:
        super().__init__(message)
        self.code = code


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>'(?:[^']|'')*')
    | (?P<dt>\d{4}-\d{2}-\d{2}T[0-9:.]+(?:Z|[+-]\d{2}:\d{2}))
    | (?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![\w]))
    | (?P<num>-?\d+(?:\.\d+)?(?![\w]))
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<punct>[(),/:])
    )""",
    re.VERBOSE,
)
_COMPARE = {"eq", "ne", "gt", "ge", "lt", "le"}
# includes/filter-directory-objects.md (the user table of concepts/aad-advanced-queries.md): properties whose
# `eq` (and every other operator) is marked "Advanced" - they need ConsistencyLevel: eventual and $count.
ADVANCED_USER_PROPS = frozenset({
    "companyName", "employeeHireDate", "employeeType", "mobilePhone", "officeLocation",
    "onPremisesExtensionAttributes", "onPremisesImmutableId", "onPremisesLastSyncDateTime",
    "onPremisesSamAccountName", "passwordPolicies", "postalCode", "preferredLanguage", "showInAddressList",
    "streetAddress", "faxNumber",
})
# concepts/aad-advanced-queries.md: "endsWith ... supported only for mail, otherMails, userPrincipalName
# and proxyAddresses" (on users).
ENDSWITH_USER_PROPS = frozenset({"mail", "otherMails", "userPrincipalName", "proxyAddresses"})
MAX_IN_VALUES = 15  # concepts/aad-advanced-queries.md: the `in` operator takes at most 15 values
MAX_EQ_LENGTH = 120  # the longest string Graph accepts in a directory-object comparison literal
_FUNCS = {"startswith", "endswith"}


@dataclass
class ODataQuery:
    predicate: Predicate
    advanced: bool
    properties: set[str] = field(default_factory=set)
    lookup: tuple[str, str] | None = None  # (property, value) of a top-level `eq` usable as an index


def _tokens(text: str) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ODataError(f"Invalid filter clause: syntax error at position {pos} in '{text}'.")
        pos = m.end()
        kind = m.lastgroup
        raw = m.group(kind)
        if kind == "str":
            out.append(("lit", raw[1:-1].replace("''", "'")))
        elif kind == "num":
            out.append(("lit", float(raw) if "." in raw else int(raw)))
        elif kind in ("dt", "guid"):
            out.append(("lit", raw))
        elif kind == "name":
            low = raw.lower()
            if low in ("true", "false"):
                out.append(("lit", low == "true"))
            elif low == "null":
                out.append(("lit", None))
            else:
                out.append(("name", raw))
        else:
            out.append(("p", raw))
    return out


def _norm(v):
    return v.lower() if isinstance(v, str) else v


def _cmp(op: str, left, right) -> bool:
    a, b = _norm(left), _norm(right)
    if op == "eq":
        return a == b
    if op == "ne":
        return a != b
    if a is None or b is None:
        return False
    try:
        return {"gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b}[op]
    except TypeError:
        return False


class _Parser:
    def __init__(self, text: str, properties: dict[str, str], entity: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0
        self.props = properties  # lower-case name -> canonical name
        self.entity = entity
        self.advanced = False
        self.used: set[str] = set()

    # -- token helpers --
    def peek(self, off: int = 0):
        j = self.i + off
        return self.toks[j] if j < len(self.toks) else ("eof", None)

    def take(self):
        tok = self.peek()
        self.i += 1
        return tok

    def is_word(self, word: str, off: int = 0) -> bool:
        k, v = self.peek(off)
        return k == "name" and str(v).lower() == word

    def expect(self, punct: str) -> None:
        k, v = self.take()
        if (k, v) != ("p", punct):
            raise ODataError(f"Invalid filter clause: expected '{punct}' but found '{v}' in '{self.text}'.")

    def fail(self, what: str):
        k, v = self.peek()
        found = "end of input" if k == "eof" else repr(v)
        raise ODataError(f"Invalid filter clause: expected {what} but found {found} in '{self.text}'.")

    # -- grammar --
    def parse(self) -> Predicate:
        if not self.toks:
            raise ODataError("Invalid filter clause: the $filter expression is empty.")
        pred = self.or_expr()
        if self.peek()[0] != "eof":
            self.fail("'and', 'or' or the end of the expression")
        return pred

    def or_expr(self) -> Predicate:
        parts = [self.and_expr()]
        while self.is_word("or"):
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else (lambda u, ps=tuple(parts): any(p(u) for p in ps))

    def and_expr(self) -> Predicate:
        parts = [self.unary()]
        while self.is_word("and"):
            self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else (lambda u, ps=tuple(parts): all(p(u) for p in ps))

    def unary(self) -> Predicate:
        if self.is_word("not"):
            self.take()
            self.advanced = True
            inner = self.unary()
            return lambda u: not inner(u)
        return self.primary()

    def property(self) -> str:
        k, v = self.take()
        if k != "name":
            self.i -= 1
            self.fail("a property name")
        canon = self.props.get(str(v).lower())
        if canon is None:
            raise ODataError(f"Could not find a property named '{v}' on type 'microsoft.graph.{self.entity}'.")
        self.used.add(canon)
        if self.entity == "user" and canon in ADVANCED_USER_PROPS:
            self.advanced = True
        return canon

    def literal(self):
        k, v = self.take()
        if k != "lit":
            self.i -= 1
            self.fail("a literal value ('text', true, false, null or a number)")
        return v

    def primary(self) -> Predicate:
        if self.peek() == ("p", "("):
            self.take()
            inner = self.or_expr()
            self.expect(")")
            return inner
        k, v = self.peek()
        if k == "name" and str(v).lower() in _FUNCS and self.peek(1) == ("p", "("):
            return self.function()
        prop = self.property()
        sub = None
        if self.peek() == ("p", "/") and prop == "onPremisesExtensionAttributes" and self.peek(1)[0] == "name":
            # resources/user.md: onPremisesExtensionAttributes "Supports $filter (eq, NOT, ge, le, in, and eq on
            # null values)" on its members, e.g. onPremisesExtensionAttributes/extensionAttribute1 eq 'x'.
            self.take()
            sub = str(self.take()[1])
            if sub not in {f"extensionAttribute{i}" for i in range(1, 16)}:
                raise ODataError(f"Could not find a property named '{sub}' on type "
                                 "'microsoft.graph.onPremisesExtensionAttributes'.")
        elif self.peek() == ("p", "/"):
            return self.lambda_any(prop)
        if sub is not None:
            get = lambda u, _p=prop, _s=sub: (u.get(_p) or {}).get(_s)  # noqa: E731
        else:
            get = lambda u, _p=prop: u.get(_p)  # noqa: E731
        k, v = self.take()
        op = str(v).lower() if k == "name" else ""
        if op in _COMPARE:
            value = self.literal()
            self._check_length(value)
            if op == "ne" or value is None:
                self.advanced = True
            if op == "eq" and value is not None and isinstance(value, str) and sub is None:
                self.last_eq = (prop, value)
            return lambda u: _cmp(op, get(u), value)
        if op == "in":
            self.expect("(")
            values = [self.literal()]
            while self.peek() == ("p", ","):
                self.take()
                values.append(self.literal())
            self.expect(")")
            if len(values) > MAX_IN_VALUES:
                raise ODataError(f"Unsupported Query: the 'in' operator of '{prop}' lists {len(values)} values; "
                                 f"at most {MAX_IN_VALUES} are allowed (concepts/aad-advanced-queries.md).",
                                 "Request_UnsupportedQuery")
            for v in values:
                self._check_length(v)
            wanted = {_norm(x) for x in values}
            return lambda u: _norm(get(u)) in wanted
        self.i -= 1
        self.fail("an operator (eq, ne, gt, ge, lt, le, in)")

    def _check_length(self, value) -> None:
        if isinstance(value, str) and len(value) > MAX_EQ_LENGTH:
            raise ODataError(f"Invalid filter clause: a string literal of {len(value)} characters is longer than "
                             f"the {MAX_EQ_LENGTH} characters a directory query accepts.", "Request_BadRequest")

    def _endswith_allowed(self, prop: str) -> None:
        if self.entity == "user" and prop not in ENDSWITH_USER_PROPS:
            raise ODataError(f"Unsupported Query: endsWith is supported on users only for "
                             f"{', '.join(sorted(ENDSWITH_USER_PROPS))}, not '{prop}' "
                             "(concepts/aad-advanced-queries.md).", "Request_UnsupportedQuery")

    def function(self) -> Predicate:
        name = str(self.take()[1]).lower()
        self.expect("(")
        prop = self.property()
        self.expect(",")
        value = self.literal()
        self.expect(")")
        if not isinstance(value, str):
            raise ODataError(f"Invalid filter clause: {name} needs a string literal in '{self.text}'.")
        needle = value.lower()
        self._check_length(value)
        if name == "endswith":
            self._endswith_allowed(prop)
            self.advanced = True
            return lambda u: isinstance(u.get(prop), str) and u[prop].lower().endswith(needle)
        return lambda u: isinstance(u.get(prop), str) and u[prop].lower().startswith(needle)

    def lambda_any(self, prop: str) -> Predicate:
        self.expect("/")
        if not self.is_word("any"):
            self.fail("'any'")
        self.take()
        self.expect("(")
        k, var = self.take()
        if k != "name":
            self.fail("a lambda variable")
        self.expect(":")
        if self.is_word("startswith") or self.is_word("endswith"):
            fname = str(self.take()[1]).lower()
            self.expect("(")
            k2, v2 = self.take()
            if k2 != "name" or v2 != var:
                raise ODataError(f"Invalid filter clause: lambda must use its variable '{var}' in '{self.text}'.")
            self.expect(",")
            value = self.literal()
            self.expect(")")
            self.expect(")")
            needle = str(value).lower()
            if fname == "endswith":
                self._endswith_allowed(prop)
                self.advanced = True
                return lambda u: any(isinstance(x, str) and x.lower().endswith(needle) for x in u.get(prop) or ())
            return lambda u: any(isinstance(x, str) and x.lower().startswith(needle) for x in u.get(prop) or ())
        k2, v2 = self.take()
        if k2 != "name" or v2 != var or not self.is_word("eq"):
            raise ODataError(f"Invalid filter clause: expected '{var} eq <value>' inside any() in '{self.text}'.")
        self.take()
        value = _norm(self.literal())
        self.expect(")")
        return lambda u: any(_norm(x) == value for x in u.get(prop) or ())


def parse_filter(text: str, properties: set[str] | list[str], entity: str = "user") -> ODataQuery:
    """Compile `$filter` text against the allowed property names (raises ODataError like Graph)."""
    parser = _Parser(text, {p.lower(): p for p in properties}, entity)
    parser.last_eq = None
    pred = parser.parse()
    lookup = None
    # An index lookup is safe only when the whole filter is a single `prop eq 'x'`.
    if len(parser.toks) == 3 and parser.last_eq is not None:
        lookup = parser.last_eq
    return ODataQuery(pred, parser.advanced, parser.used, lookup)


def parse_select(text: str | None, properties: set[str] | list[str], entity: str = "user") -> list[str] | None:
    """`$select` -> canonical property names; unknown names raise Graph's BadRequest."""
    if text is None or not text.strip():
        return None
    canon = {p.lower(): p for p in properties}
    out: list[str] = []
    for raw in text.split(","):
        name = raw.strip()
        if not name:
            continue
        c = canon.get(name.lower())
        if c is None:
            raise ODataError(
                f"Parsing OData Select and Expand failed: Could not find a property named '{name}' on type "
                f"'microsoft.graph.{entity}'.")
        if c not in out:
            out.append(c)
    return out or None
