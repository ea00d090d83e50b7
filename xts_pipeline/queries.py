"""SQL as package data: each query is a `.sql` file under `<package>/sql/`, loaded by name.

Why: a query in a file reads (and diffs) as SQL, ships with the wheel like the `.lark` grammars do, and
is never assembled from Python strings. Values are bound with `?` or `$name`; an identifier that must vary
(a table or column name) is checked against the schema's whitelist by the caller (see store.count_by).
A fragment that must vary (a column list built from the schema's constants) is a named `{{placeholder}}`
the file's header declares (`-- fragment NAME: what it holds`), filled by `render`; values never are
(the staging pre-check's patterns, the planner's external-user predicate, the delta round's shared fold).
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_NAME = re.compile(r"^[a-z0-9_]+(/[a-z0-9_]+)*$")
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
_DECLARED = re.compile(r"^--\s*fragment\s+(\w+):", re.MULTILINE)
_HEADER = re.compile(r"\A(?:[ \t]*--[^\n]*\n)+")
# SQL text with its string literals and comments taken out: a ';' left in it separates statements; one inside a
# literal or a comment (the plan's reasons have some) separates nothing.
_LITERALS_AND_COMMENTS = re.compile(r"'(?:[^']|'')*'|--[^\n]*")


class QueryNotFound(LookupError):
    """No `.sql` file of that name ships with the package (a typo, or package data left out of the wheel)."""


@cache
def load(name: str, package: str = "xts_pipeline") -> str:
    """The text of `<package>/sql/<name>.sql` (name like `lease/holder`), read once per process."""
    if not _NAME.fullmatch(name):
        raise QueryNotFound(f"query name {name!r}: use lower-case words and '/' (e.g. 'lease/holder')")
    path = resources.files(package).joinpath("sql", *f"{name}.sql".split("/"))
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise QueryNotFound(f"no query {name!r} in {package}/sql/ (is *.sql in pyproject's package-data?)") from exc


def statements(name: str, package: str = "xts_pipeline") -> tuple[str, ...]:
    """The statements of a multi-statement file (each ends with `;` at the end of a line), comments kept."""
    chunks = re.split(r";[ \t]*$", load(name, package), flags=re.MULTILINE)
    return tuple(c.strip() for c in chunks
                 if any(line.strip() and not line.strip().startswith("--") for line in c.splitlines()))


def fragments(name: str, package: str = "xts_pipeline") -> frozenset[str]:
    """The placeholders a query's header declares (`-- fragment NAME: ...`): its whole whitelist."""
    return frozenset(_DECLARED.findall(load(name, package)))


def render(name: str, package: str = "xts_pipeline", /, **parts: str) -> str:
    """A query with its declared `{{placeholders}}` filled: SQL text from the caller's constants, never values.

    Every declared fragment must be given and nothing else, and a part may not hold a `;` outside its string
    literals and comments, so a fragment can only be what the header says it is: a column list, an expression
    or a query the caller composed from loaded files, never a second statement.
    """
    text = load(name, package)
    declared, used = fragments(name, package), set(_PLACEHOLDER.findall(text))
    if set(parts) != declared or used != declared:
        raise ValueError(f"query {name!r} declares fragments {sorted(declared)} and uses {sorted(used)}; "
                         f"given {sorted(parts)}")
    if any(";" in _LITERALS_AND_COMMENTS.sub("", part) for part in parts.values()):
        raise ValueError(f"query {name!r}: a fragment may not contain ';' (outside a string literal or a comment)")
    body = _HEADER.sub("", text, count=1)  # the header's comments stay out of an embedded fragment
    return _PLACEHOLDER.sub(lambda m: parts[m.group(1)], body).strip()
